"""`POST /api/ask`: the JSON API the widget and other sites call.

Bad input gets a 4xx with {"error": "..."} saying what to change: malformed JSON (400), a body
that is not an object or has no text question (400), an empty question (400), a question over the
length limit (413), too many requests from one client (429, with Retry-After). While the server
has no index yet (it is being pulled or built), 503 with Retry-After and how far it is.
"""
from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..answer import answer
from ..retrieve import QuestionError, QuestionTooLong, check_question
from .feedback import FeedbackLog
from .live import IndexNotReady, LiveSearcher
from .ratelimit import RateLimiter

MAX_BODY_BYTES = 64 * 1024
MAX_HISTORY_TURNS = 20


def client_key(request: Request) -> str:
    """The client's address. Behind a proxy (a Hugging Face Space) uvicorn has already replaced it by
    the X-Forwarded-For client, but only for proxies it trusts (FORWARDED_ALLOW_IPS, default
    127.0.0.1): reading the header here would let any client pick its own rate-limit bucket."""
    return request.client.host if request.client else "unknown"


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def api_router(live: LiveSearcher, limiter: RateLimiter, feedback: FeedbackLog) -> APIRouter:
    router = APIRouter()
    max_chars = live.config.settings.max_question_chars

    @router.post("/api/ask")
    async def ask(request: Request) -> JSONResponse:
        allowed, retry_after = limiter.allow(client_key(request))
        if not allowed:
            return _error(429, f"too many questions; try again in {int(retry_after) + 1} s",
                          **{"Retry-After": str(int(retry_after) + 1)})
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"request body over {MAX_BODY_BYTES // 1024} KB")
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, f"malformed JSON: {exc}")
        if not isinstance(payload, dict):
            return _error(400, 'expected a JSON object like {"question": "..."}')
        question = payload.get("question")
        history = payload.get("history") or []
        if not isinstance(history, list):
            return _error(400, "history must be a list of earlier questions or chat messages")
        try:
            question = check_question(question, max_chars)
        except QuestionError as exc:
            return _error(413 if isinstance(exc, QuestionTooLong) else 400, str(exc))
        try:
            searcher = live.get()
        except IndexNotReady as exc:    # the index is being pulled or built: say how far, and when to retry
            return JSONResponse({"error": str(exc), "status": exc.status.to_dict()}, status_code=503,
                                headers={"Retry-After": str(exc.status.retry_after)})
        result = await run_in_threadpool(answer, searcher, question, history[-MAX_HISTORY_TURNS:])
        feedback.question(question, result.answerable, channel="api")
        return JSONResponse(result.to_dict())

    return router
