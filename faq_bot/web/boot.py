"""Listen at once: an ASGI app that answers while the real one is imported and built.

Importing Gradio alone takes 3-6 s on 2 busy cores (5.1 and 6.3 s measured with a load average of
2.5), and an index and its model take a few more, so `faq-bot serve` and app.py hand uvicorn this app.
It builds the real app (`create_app`) on a background thread and, until it is ready, answers
`/healthz` (state "starting"), `/api/ask` with 503 and Retry-After (CORS as the real app), and any page
with a short notice that reloads itself. Then every request goes to the real app, and so do the
lifespan events (Gradio starts its queue there).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, Awaitable, Callable

from .live import Status

log = logging.getLogger("faq_bot.web")

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

_PAGE = ("<!doctype html><html lang=\"zh-Hant\"><head><meta charset=\"utf-8\">"
         "<meta http-equiv=\"refresh\" content=\"{seconds}\"><title>Deep Learning 101 FAQ</title></head>"
         "<body style=\"font-family: system-ui, sans-serif; margin: 3em\"><p>⏳ {message}</p></body></html>")


class BootingApp:
    """Answers at once; hands over to the app `build()` returns as soon as it has started."""

    def __init__(self, build: Callable[["BootingApp"], ASGIApp], cors_origins: tuple[str, ...] = ()) -> None:
        self._build = build
        self._cors = set(cors_origins)
        self._app: ASGIApp | None = None
        self._failed: str | None = None
        self._status_of: Callable[[], Status] | None = None
        self._inner_queue: asyncio.Queue | None = None
        self._inner_task: asyncio.Task | None = None

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        elif self._app is not None:
            await self._app(scope, receive, send)
        elif scope["type"] == "http":
            await self._starting(scope, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})        # "try again later"

    # ------------------------------------------------------------------ the real app
    async def _lifespan(self, scope: dict, receive, send) -> None:
        loop = asyncio.get_running_loop()
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                threading.Thread(target=self._make, args=(loop, scope), name="faq-bot-boot", daemon=True).start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop_inner()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _make(self, loop: asyncio.AbstractEventLoop, scope: dict) -> None:
        try:
            app = self._build(self)
        except Exception as exc:  # noqa: BLE001 -- shown on /healthz and in the log; the process stays up
            log.exception("could not build the web app")
            self._failed = f"{type(exc).__name__}: {exc}"
            return
        asyncio.run_coroutine_threadsafe(self._start_inner(app, scope), loop)

    async def _start_inner(self, app: ASGIApp, outer: dict) -> None:
        """Run the real app's lifespan startup (the ASGI protocol, so any framework), then switch."""
        queue: asyncio.Queue = asyncio.Queue()
        started: asyncio.Future = asyncio.get_running_loop().create_future()

        async def send(message: dict) -> None:
            if message["type"].startswith("lifespan.startup") and not started.done():
                started.set_result(message)

        await queue.put({"type": "lifespan.startup"})
        # the outer state dict: uvicorn copies it into every request's scope
        scope = {"type": "lifespan", "asgi": outer.get("asgi", {"version": "3.0"}), "state": outer.get("state", {})}
        self._inner_queue, self._inner_task = queue, asyncio.create_task(app(scope, queue.get, send))
        await asyncio.wait({started, self._inner_task}, return_when=asyncio.FIRST_COMPLETED)
        if started.done() and started.result()["type"] == "lifespan.startup.failed":
            self._failed = started.result().get("message") or "the web app failed to start"
            log.error("the web app failed to start: %s", self._failed)
            return
        self._app = app          # started (or an app without lifespan support)

    async def _stop_inner(self) -> None:
        if self._inner_task is None or self._inner_task.done() or self._inner_queue is None:
            return
        await self._inner_queue.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(asyncio.shield(self._inner_task), timeout=10)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001 -- shutting down anyway
            pass

    # ------------------------------------------------------------------ meanwhile
    def follow_status(self, status_of: Callable[[], Status]) -> None:
        """Report `status_of()` (e.g. the index being pulled) instead of "starting" from now on."""
        self._status_of = status_of

    def status(self) -> Status:
        if self._failed:
            return Status("failed", detail=self._failed)
        status = self._status_of() if self._status_of else None
        if status is None or status.ready:        # the index answers, but the web app is not up yet
            return Status("starting", detail="loading the web app")
        return status

    async def _starting(self, scope: dict, send) -> None:
        status = self.status()
        path, method = scope.get("path", ""), scope.get("method", "GET")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        cors = []
        origin = headers.get("origin")
        if origin and origin in self._cors:
            cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        if method == "OPTIONS" and cors:
            await _respond(send, 200, b"", "text/plain", cors + [
                (b"access-control-allow-methods", b"GET, POST"), (b"access-control-allow-headers", b"Content-Type"),
                (b"access-control-max-age", b"600")])
        elif path == "/healthz":
            await _respond(send, 503 if status.state == "failed" else 200, _json(status.to_dict()),
                           "application/json", cors)
        elif path.startswith("/api/"):
            await _respond(send, 503, _json({"error": status.message() or status.detail, "status": status.to_dict()}),
                           "application/json", cors + [(b"retry-after", str(status.retry_after).encode())])
        else:
            # reload soon: the chat itself is up within seconds and shows the index's progress
            page = _PAGE.format(seconds=3, message=status.message()).encode()
            await _respond(send, 503, page, "text/html; charset=utf-8",
                           [(b"retry-after", str(status.retry_after).encode())])


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


async def _respond(send, status: int, body: bytes, content_type: str, headers: list) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), *headers]})
    await send({"type": "http.response.body", "body": body})


def booting_app(config, rate_limit: int | None = None) -> BootingApp:
    """The whole web app of `config` (server.create_app) behind a BootingApp: what uvicorn runs. The
    index is pulled or built (keeper.py) while Gradio is still being imported."""

    def build(boot: BootingApp) -> ASGIApp:
        from .keeper import IndexKeeper
        from .live import LiveSearcher

        live = LiveSearcher(config)
        keeper = IndexKeeper(config, live)
        keeper.start()
        boot.follow_status(live.status)
        from .server import create_app

        return create_app(config, rate_limit=rate_limit, live=live, keeper=keeper)

    return BootingApp(build, config.settings.cors_origins)
