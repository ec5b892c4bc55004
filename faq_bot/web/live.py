"""The searcher a running server answers with, swapped to a new index build between requests.

`faq-bot ingest` writes a new build folder and atomically switches `index/CURRENT` to it, keeping
the previous build. The server notices the switch (a small file read, at most once a second),
loads the new build beside the old one with the same embedder, and swaps the reference: requests
in flight finish on the old searcher, new ones use the new. A build that fails to load is logged
and the old searcher stays.

A server may start with no index at all (it is being pulled or built, see keeper.py): then `get()`
raises IndexNotReady with what is happening and how far it is, and the first build that appears is
loaded the same way.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..embed import BatchingEmbedder, embedder_from_settings
from ..index import current_build, load_build
from ..retrieve import Searcher

log = logging.getLogger("faq_bot.web")

# How long a client is asked to wait (Retry-After) while there is no index yet. A pull of the
# portal's archive and the model load take seconds; a build from the sources about 20 minutes on
# 2 cores, of which a visitor should not be told to wait for all: a minute, then ask again.
RETRY_AFTER_SECONDS = {"starting": 5, "pulling": 10, "loading": 5, "building": 60, "failed": 300}

# After a switch the old build is freed once the requests still using it finish; glibc keeps most
# of what it held (~50 MB of the whole portal's) in its heap. Handing it back to the system stops a
# long-running server growing by that much at every refresh (bench/load.py --soak).
RELEASE_AFTER_SECONDS = 10.0


def release_memory() -> None:
    """Collect the freed searcher and return the heap's free pages to the system (glibc only)."""
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        return
    if trim is not None:
        trim(0)


@dataclass(frozen=True)
class Status:
    """Where the server is in getting its index: ready, or what it is doing and how far it is."""

    state: str                      # starting | pulling | building | loading | ready | failed
    progress: float | None = None   # 0..1 when known
    detail: str = ""                # for the log and /healthz (English)
    build: str | None = None        # the build answering, once ready

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def retry_after(self) -> int:
        return RETRY_AFTER_SECONDS.get(self.state, 10)

    def message(self) -> str:
        """What the chat and the widget show a visitor (Traditional Chinese, as the portal)."""
        percent = f" {int(self.progress * 100)}%" if self.progress is not None else ""
        return {"starting": "問答小幫手正在啟動…",
                "pulling": f"正在下載索引…{percent}",
                "building": f"正在建立索引…{percent}",
                "loading": "正在載入索引…",
                "failed": "索引無法建立，問答暫停服務，請稍後再試。",
                }.get(self.state, "")

    def to_dict(self) -> dict:
        return {"state": self.state, "progress": self.progress, "detail": self.detail, "build": self.build,
                "message": self.message()}


class IndexNotReady(RuntimeError):
    """No index to answer from yet; `status` says why and for how long."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.message() or status.detail)
        self.status = status


class LiveSearcher:
    """Hands out the current Searcher; reloads when the index's CURRENT build changes.

    The check on a request is one small file read, at most every `check_every` seconds. Loading a
    new build (~0.2 s on the full corpus) happens on a background thread, so neither the request
    that noticed the change nor the event loop waits for it."""

    def __init__(self, config: Config, check_every: float = 1.0) -> None:
        self.config = config
        self.index_dir = Path(config.settings.index_dir)
        self.check_every = check_every
        self._embedder: BatchingEmbedder | None = None
        self._searcher: Searcher | None = None
        self._build: Path | None = None
        self._status = Status("starting", detail="no index yet")
        self._failed: Path | None = None       # a build that would not load: not retried until CURRENT moves on
        build = self._new_build()
        first = self._open(build) if build is not None else None   # an index is there: answer from it at once
        if first is not None:
            self._searcher, self._build = first, first.index.build_dir
        self._checked = time.monotonic()
        self._reload_lock = threading.Lock()  # held from noticing a new build until it is loaded (or not)
        self.reloads = 0

    @property
    def build(self) -> Path | None:
        return self._build

    def status(self) -> Status:
        if self._searcher is not None:
            return Status("ready", 1.0, f"answering from {self._build.name}", self._build.name)
        return self._status

    def set_status(self, state: str, progress: float | None = None, detail: str = "") -> None:
        """What the keeper is doing while there is no index to answer from (shown to visitors)."""
        self._status = Status(state, progress, detail)

    def get(self) -> Searcher:
        """The searcher to answer the next request with (never waits for a reload); IndexNotReady
        while there is none yet."""
        now = time.monotonic()
        if now - self._checked >= self.check_every and self._reload_lock.acquire(blocking=False):
            loading = False
            try:
                self._checked = now
                build = self._new_build()
                if build is not None:
                    threading.Thread(target=self._load, args=(build,), name="faq-bot-reload", daemon=True).start()
                    loading = True               # the loading thread releases the lock
            finally:
                if not loading:
                    self._reload_lock.release()
        searcher = self._searcher
        if searcher is None:
            raise IndexNotReady(self.status())
        return searcher

    def load_now(self) -> bool:
        """Load the live build if it is not the one answering (the keeper calls this right after
        installing one, so the first answers need no request to notice it). True if it answers."""
        with self._reload_lock:
            build = self._new_build()
            if build is not None:
                self._load_locked(build)
        return self._searcher is not None

    @property
    def failed(self) -> Path | None:
        """The last build that would not load (not retried until CURRENT names another)."""
        return self._failed

    def _new_build(self) -> Path | None:
        try:
            build = current_build(self.index_dir)
        except Exception as exc:  # noqa: BLE001 -- whatever it was (CURRENT not UTF-8), check again later
            log.warning("could not read %s/CURRENT: %s", self.index_dir, exc)
            return None
        return build if build is not None and build not in (self._build, self._failed) else None

    def _load(self, build: Path) -> None:
        try:
            self._load_locked(build)
        finally:
            self._reload_lock.release()

    def _open(self, build: Path) -> Searcher | None:
        """A searcher over `build` (this build, even if CURRENT has moved on meanwhile), or None: a
        build that would not load, whatever broke it (damaged, another model), is recorded as the
        failed one and logged, and the one served stays (at start, the keeper replaces it)."""
        try:
            if self._embedder is None:
                self._embedder = BatchingEmbedder(embedder_from_settings(self.config.settings))
            return Searcher(load_build(build), self._embedder, self.config.settings)
        except Exception as exc:  # noqa: BLE001 -- whatever broke the load, keep serving the old build
            self._failed = build
            served = self._build.name if self._build else "nothing (no index yet)"
            log.warning("could not load the new index build %s; still answering from %s: %s",
                        build.name, served, exc)
            return None

    def _load_locked(self, build: Path) -> None:
        fresh = self._open(build)
        if fresh is None:
            return
        switched = self._searcher is not None
        self._searcher, self._build = fresh, fresh.index.build_dir
        self.reloads += 1
        log.info("switched to index build %s", fresh.index.build_dir.name)
        if switched:
            timer = threading.Timer(RELEASE_AFTER_SECONDS, release_memory)
            timer.daemon = True
            timer.start()
