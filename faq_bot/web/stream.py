"""Server-Sent Events for `POST /api/ask/stream`: the answer's events as the text/event-stream a
browser reads with fetch.

    event: token            {"text": "..."}     verified text, as the model writes it (0 or more)
    event: final            the JSON /api/ask returns (exactly one, last)
    event: error            {"error": "..."}    instead of final, when answering failed

The blocking event source (`Asker.ask_stream`) runs on a worker thread; when the visitor goes away
the `stop` event is set, so the model's stream is closed instead of written to nobody. Proxies must
not buffer the stream (`X-Accel-Buffering: no`), and a comment line every KEEPALIVE_S seconds keeps
an idle connection open while the model reads its prompt.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import AsyncIterator, Iterator

from ..generate import Final, Token

log = logging.getLogger("faq_bot.web")

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
MEDIA_TYPE = "text/event-stream; charset=utf-8"
# Proxies drop a connection idle for 60 s (nginx's proxy_read_timeout default); the local model can
# take longer than that to its first sentence on a busy machine.
KEEPALIVE_S = 15.0


def sse(event: str, data: dict) -> bytes:
    """One event: its name and its data as one line of JSON."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


def encode(event: Token | Final) -> bytes:
    if isinstance(event, Token):
        return sse("token", {"text": event.text})
    return sse("final", event.answer.to_dict())


def error_event(exc: BaseException) -> bytes:
    log.exception("answer stream failed", exc_info=exc)
    return sse("error", {"error": "the answer could not be completed; ask again"})


async def event_stream(events: Iterator[Token | Final], stop: threading.Event,
                       keepalive_s: float = KEEPALIVE_S) -> AsyncIterator[bytes]:
    """The SSE bytes of `events`, read on a worker thread; anything raised becomes an error event,
    and nothing follows the final (or error) event."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    def pump() -> None:
        try:
            for event in events:
                loop.call_soon_threadsafe(queue.put_nowait, encode(event))
                if isinstance(event, Final) or stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 -- becomes the stream's error event
            loop.call_soon_threadsafe(queue.put_nowait, error_event(exc))
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()           # closes the model's stream, if it is still open
            loop.call_soon_threadsafe(queue.put_nowait, done)

    threading.Thread(target=pump, name="faq-bot-stream", daemon=True).start()
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=keepalive_s)
            except asyncio.TimeoutError:
                yield b": waiting for the model\n\n"
                continue
            if item is done:
                return
            yield item
            if item.startswith((b"event: final", b"event: error")):
                return
    finally:
        stop.set()       # the visitor left, or the answer is complete: the writer stops either way
