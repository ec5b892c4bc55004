"""Asking, the same way at every entry point (the JSON API, the Gradio endpoint, the chat): the
client's rate limit, the checks of question and history, the answer (from memory when the same
question was answered on the same index build), and the visitor log.

`Asker.ask` blocks (the model, the log file): entry points call it off the event loop. With a
`generate.Writer` (answer_mode: llm) the answer is written by the LLM; `Asker.ask_stream` gives its
verified sentences as they come, then the final answer, which `ask` returns.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

from ..answer import SMALL_TALK, Answer, answer, searched_question
from ..generate import Final, Token, Writer
from ..retrieve import check_question
from .feedback import FeedbackLog
from .guard import check_history
from .live import LiveSearcher
from .ratelimit import RateLimiter

# Answers kept in memory. An FAQ's traffic repeats itself (the load bench sends 80% of it to 20
# questions); an answer without its search internals is 3-5 KB, so 2,000 of them take under 10 MB.
ANSWER_CACHE_SIZE = 2000


class RateLimited(Exception):
    """The client asked more than the rate limit allows; `retry_after` in whole seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = int(retry_after) + 1
        super().__init__(f"too many questions; try again in {self.retry_after} s")


def client_key(request) -> str:
    """The client's address (a Starlette or Gradio request). Behind a proxy (a Hugging Face Space)
    uvicorn has already replaced it by the X-Forwarded-For client, but only for proxies it trusts
    (FORWARDED_ALLOW_IPS, default 127.0.0.1): reading the header here would let any client pick its
    own rate-limit bucket."""
    client = getattr(request, "client", None)
    return client.host if client else "unknown"


class AnswerCache:
    """The answers to the last `size` distinct questions, for one index build: keyed on the question
    as `check_question` cleans it (NFKC, white space) and the follow-up context the answer used, so
    a cached answer is exactly the one answering again would give. A request on another build
    drops them all."""

    def __init__(self, size: int = ANSWER_CACHE_SIZE) -> None:
        self.size = size
        self._build: Path | None = None
        self._answers: OrderedDict[tuple[str, str | None], Answer] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._answers)

    @property
    def build(self) -> Path | None:
        """The index build the kept answers come from."""
        return self._build

    def get(self, build: Path, key: tuple[str, str | None]) -> Answer | None:
        with self._lock:
            if build != self._build:
                self._answers.clear()
                self._build = build
                return None
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
            return found

    def put(self, build: Path, key: tuple[str, str | None], result: Answer) -> None:
        """Keep `result` (without the search internals it carries for eval), unless the server has
        moved to another build since it was computed."""
        with self._lock:
            if build != self._build or self.size <= 0:
                return
            self._answers[key] = dataclasses.replace(result, result=None, decision=None)
            self._answers.move_to_end(key)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)


class Asker:
    """What every entry point does with a question."""

    def __init__(self, live: LiveSearcher, limiter: RateLimiter, feedback: FeedbackLog,
                 cache: AnswerCache | None = None, writer: Writer | None = None) -> None:
        self.live, self.limiter, self.feedback = live, limiter, feedback
        self.cache = cache if cache is not None else AnswerCache()
        self.max_chars = live.config.settings.max_question_chars
        self.writer = writer          # None: quotes only (answer_mode: extractive)

    def admit(self, client: str) -> None:
        """RateLimited when `client` is over the limit; otherwise counts this request."""
        allowed, retry_after = self.limiter.allow(client)
        if not allowed:
            raise RateLimited(retry_after)

    def ask(self, question: object, history: object, channel: str) -> Answer:
        """The answer to `question` (with the chat's earlier questions), logged for the site owner.
        Raises QuestionError (400/413) or RequestError for input that is not a well-formed question."""
        for event in self.ask_stream(question, history, channel):
            if isinstance(event, Final):
                return event.answer
        raise RuntimeError("the answer stream ended without a final answer")

    def ask_stream(self, question: object, history: object, channel: str,
                   stop: threading.Event | None = None) -> Iterator[Token | Final]:
        """`ask`, as events: the written answer's verified sentences as they come (Token), then
        exactly one Final. The question is checked, answered by retrieval and logged before this
        returns (so bad input raises here, not in the stream); `stop` set ends the stream early."""
        question = check_question(question, self.max_chars)
        earlier = check_history(history, self.max_chars)
        searcher = self.live.get()
        build = searcher.index.build_dir
        key = (question, searched_question(question, earlier)[1])     # the earlier turns actually searched
        cached = self.cache.get(build, key)
        extractive = cached or answer(searcher, question, earlier)
        # small talk is no question the portal failed to answer: not among the owner's unanswered ones
        self.feedback.question(question, extractive.answerable or extractive.mode == SMALL_TALK, channel=channel)
        if cached is not None:
            return iter([Final(cached)])
        return self._events(searcher, build, key, extractive, earlier, stop)

    def _events(self, searcher, build: Path, key: tuple[str, str | None], extractive: Answer,
                earlier: list[str], stop: threading.Event | None) -> Iterator[Token | Final]:
        if self.writer is None:
            self.cache.put(build, key, extractive)
            yield Final(extractive)
            return
        for event in self.writer.stream(searcher, extractive, earlier, stop):
            if isinstance(event, Final) and not event.answer.note:   # a failed endpoint is not remembered
                self.cache.put(build, key, event.answer)
            yield event
