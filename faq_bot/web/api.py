"""`POST /api/ask`: the JSON API the widget and other sites call.

Bad input gets a 4xx with {"error": "..."} saying what to change: malformed JSON, JSON nested too
deep, a body that is not an object, a question or history turn that is not text, not valid Unicode
or empty (400); a question or history turn over the length limit, a body over 64 KB (413); too
many requests from one client (429, with Retry-After). Body size and nesting are refused by
`guard.BodyGuard` before the body is read or parsed. While the server has no index yet (it is being
pulled or built), 503 with Retry-After and how far it is.

`POST /api/ask/stream` takes the same body, goes through the same limits, checks and log, and
refuses the same way; an admitted question is answered as Server-Sent Events (stream.py): the
written answer's verified sentences as they come, then the final answer, the JSON /api/ask returns.
"""
from __future__ import annotations

import threading

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..retrieve import QuestionError
from .guard import RequestError, error_status, parse_json
from .live import IndexNotReady
from .service import Asker, RateLimited, client_key
from .stream import HEADERS, MEDIA_TYPE, event_stream


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


# What refuses a question before it is answered, the same on both routes.
REFUSALS = (RateLimited, QuestionError, RequestError, IndexNotReady)


def _refusal(exc: Exception) -> JSONResponse:
    if isinstance(exc, RateLimited):
        return _error(429, str(exc), **{"Retry-After": str(exc.retry_after)})
    if isinstance(exc, IndexNotReady):   # the index is being pulled or built: say how far, and when to retry
        return JSONResponse({"error": str(exc), "status": exc.status.to_dict()}, status_code=503,
                            headers={"Retry-After": str(exc.status.retry_after)})
    return _error(error_status(exc), str(exc))


async def _question(request: Request) -> dict:
    payload = parse_json(await request.body())
    if not isinstance(payload, dict):
        raise RequestError(400, 'expected a JSON object like {"question": "..."}')
    return payload


def api_router(asker: Asker) -> APIRouter:
    router = APIRouter()

    @router.post("/api/ask")
    async def ask(request: Request) -> JSONResponse:
        try:
            asker.admit(client_key(request))
            payload = await _question(request)
            result = await run_in_threadpool(asker.ask, payload.get("question"), payload.get("history"), "api")
        except REFUSALS as exc:
            return _refusal(exc)
        return Response(result.to_json(), media_type="application/json")

    @router.post("/api/ask/stream")
    async def ask_stream(request: Request):
        stop = threading.Event()
        try:
            asker.admit(client_key(request))
            payload = await _question(request)
            events = await run_in_threadpool(asker.ask_stream, payload.get("question"), payload.get("history"),
                                             "api", stop)
        except REFUSALS as exc:
            return _refusal(exc)
        return StreamingResponse(event_stream(events, stop), media_type=MEDIA_TYPE, headers=HEADERS)

    return router
