"""What a request must be before anything reads it: a bounded body, JSON nested a few levels at
most, and (for a question) text and history of the right types and lengths. Every refusal is a
4xx with {"error": "..."} saying what to change, so no malformed input reaches a 500.

`BodyGuard` wraps the whole app (the JSON API and Gradio's endpoints alike); `check_history`
(with `retrieve.check_question`) checks what the API, the Gradio endpoint and the chat hand on.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..retrieve import QuestionError, QuestionTooLong, check_question, unpaired_surrogate
from ..textproc import has_words

# The JSON API's body: a question (2,000 characters, at most 6 KB as UTF-8) and the last turns of
# history; the widget sends its last 5 questions. 64 KB holds 10 full-length turns.
MAX_BODY_BYTES = 64 * 1024
# Gradio's own endpoints receive the whole chat with every question (the answers' Markdown, with
# percent-encoded links: 3-4 KB a turn); 1 MB is a conversation of about 250 turns.
MAX_UI_BODY_BYTES = 1024 * 1024
# Python's JSON decoder recurses once per level and fails with RecursionError near 1,000 levels
# (a body of 5,000 '[' was a 500). The deepest real body is Gradio's chat payload, 6 levels
# ({"data": [[{"content": [{"text"...}]}]]}); the API's is 3.
MAX_JSON_DEPTH = 32
# A follow-up is searched with at most the last few earlier questions (answer.MAX_CONTEXT_TURNS);
# older turns are never read.
MAX_HISTORY_TURNS = 20


class RequestError(ValueError):
    """A request that cannot be answered as sent: `status` (4xx) and a message saying what to change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_status(exc: QuestionError | RequestError) -> int:
    """The HTTP status of a refused question or request."""
    if isinstance(exc, RequestError):
        return exc.status
    return 413 if isinstance(exc, QuestionTooLong) else 400


# A JSON string, or an unterminated one running to the end: this always matches where it starts,
# so stripping strings stays linear even on bodies of escaped quotes.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes) -> int:
    """How deep `body`'s arrays and objects nest, counted without parsing (so without recursion):
    brackets inside strings do not count, and in a malformed body the deepest run of openers over
    closers anywhere counts (']]]][[[' is 3 deep). Linear in the body's size: one regular-expression
    pass over it, then a running sum over its brackets."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    level = np.cumsum(np.where((codes == ord("[")) | (codes == ord("{")), 1, -1))
    lowest_before = np.minimum.accumulate(np.concatenate(([0], level[:-1])))
    return int((level - lowest_before).max())


def check_depth(body: bytes) -> None:
    """RequestError(400) for a body nested deeper than MAX_JSON_DEPTH. A body with no more opening
    brackets than that cannot nest deeper: a question's body has one or two, and counting them is a
    tenth of the scan, which ran on the event loop for every request."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise RequestError(400, f"JSON nested {depth} levels deep; at most {MAX_JSON_DEPTH} levels are accepted")


def parse_json(body: bytes) -> object:
    """The JSON value of a request body, or RequestError(400) saying what is wrong with it."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"malformed JSON: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None
    except RecursionError:     # BodyGuard refuses such bodies first; this keeps the function total
        raise RequestError(400, f"JSON nested too deep; at most {MAX_JSON_DEPTH} levels are accepted") from None


def check_history(history: object, max_chars: int) -> list[str]:
    """The earlier questions of a chat history: a list of questions (text), of {"role", "content"}
    messages or of [question, answer] pairs, its last MAX_HISTORY_TURNS turns. Each question is
    checked as a question is (text, valid Unicode, at most `max_chars`; empty ones and marks alone are skipped);
    a wrong type is a RequestError(400), a question over the limit a QuestionTooLong (413). Invalid
    Unicode anywhere in the history (the bot's turns, a pair's answer, older turns) is a
    QuestionError (400) too: no text encoding can write it, so the client sent something broken."""
    if history is None:
        return []
    if not isinstance(history, list):
        raise RequestError(400, "history must be a list of earlier questions or chat messages")
    questions = []
    first = max(len(history) - MAX_HISTORY_TURNS, 0)
    for n, item in enumerate(history[first:], first + 1):
        if isinstance(item, dict):
            if item.get("role") != "user":
                continue                     # the bot's own turns are not searched
            item = item.get("content")
        elif isinstance(item, list) and item:
            item = item[0]
        if not isinstance(item, str):
            raise RequestError(400, f"history turn {n} must be an earlier question (text), a "
                                    '{"role": "user", "content": "..."} message or a [question, answer] pair')
        if not has_words(item):             # empty, or marks alone ("?"): nothing a question leans on
            continue
        try:
            questions.append(check_question(item, max_chars))
        except QuestionError as exc:
            raise type(exc)(f"history turn {n}: {exc}") from None
    for n, item in enumerate(history, 1):      # invalid anywhere, also where nothing reads it
        bad = _surrogate_within(item)
        if bad is not None:
            raise QuestionError(f"history turn {n} holds invalid Unicode ({bad} of its text): send it as UTF-8 text")
    return questions


def _surrogate_within(value: object) -> str | None:
    """`unpaired_surrogate` of the first text (a string, an object's key or value, at any depth)
    that holds one. Depth is bounded by MAX_JSON_DEPTH before a body is parsed."""
    if isinstance(value, str):
        return unpaired_surrogate(value)
    if isinstance(value, dict):
        value = [part for pair in value.items() for part in pair]
    if isinstance(value, list):
        for part in value:
            found = _surrogate_within(part)
            if found is not None:
                return found
    return None


class BodyGuard:
    """ASGI middleware: a request body over its route's limit is refused by its Content-Length
    before a byte of it is read, or, sent without one, as soon as the bytes read pass the limit;
    a body nested deeper than MAX_JSON_DEPTH is refused before any JSON decoder sees it. The body
    is then handed on as one message."""

    def __init__(self, app: ASGIApp, limits: Sequence[tuple[str, int]] = (("/api/", MAX_BODY_BYTES),),
                 default_limit: int = MAX_UI_BODY_BYTES) -> None:
        self.app = app
        self.limits = tuple(limits)
        self.default_limit = default_limit

    def limit_for(self, path: str) -> int:
        return next((limit for prefix, limit in self.limits if path.startswith(prefix)), self.default_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(send, 400, "Content-Length must be a number of bytes")
                return
            if int(declared) > limit:
                await _refuse(send, 413, f"request body over {limit // 1024} KB")
                return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await _refuse(send, 413, f"request body over {limit // 1024} KB")
                return
            if not message.get("more_body", False):
                break
        body = bytes(body)
        if not headers.get(b"content-type", b"").startswith(b"multipart/"):
            try:   # a large body is scanned on a worker thread, not on the event loop
                if len(body) > MAX_BODY_BYTES:
                    await run_in_threadpool(check_depth, body)
                else:
                    check_depth(body)
            except RequestError as exc:
                await _refuse(send, exc.status, str(exc))
                return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that yields the body already read, then waits on the real one (disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
