"""Gets a running server its index, and keeps it current, on one background thread.

At start, with no index to answer from: pull `settings.index_url` when it is set (a prebuilt archive:
seconds), otherwise clone the sources that are missing and ingest them (the whole portal: about 10
minutes on 2 cores). A failed pull falls back to the build. What it is doing and how far it is goes to
the LiveSearcher's status, which the chat, `/healthz` and `/api/ask` show; as soon as a build is
installed the live searcher loads it, and the server answers from it without a restart.

With `index_url`, afterwards: every `index_check_minutes` it asks the URL whether a new archive was
published (a conditional request: ETag / Last-Modified) and pulls it; the live searcher switches to
it between requests, as it does after `faq-bot ingest`.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from .. import artifact
from ..config import Config, ConfigError
from ..embed import EmbedderError
from ..index import IndexLoadError
from ..ingest import ingest
from ..sources import clone_missing
from .live import LiveSearcher

log = logging.getLogger("faq_bot.web")

# The refresh workflow asks a server to check index_url right after publishing (POST /api/index/check);
# anyone can call that, so checks it triggers are at most this often: a conditional request a minute
# to the configured URL costs nothing.
MIN_CHECK_SECONDS = 60

# What a failed start-up or check may raise that is the environment's doing, not a bug: logged as
# one line, and the server goes on with what it has.
EXPECTED = (artifact.ArchiveError, IndexLoadError, ConfigError, EmbedderError, OSError)


class IndexKeeper:
    def __init__(self, config: Config, live: LiveSearcher) -> None:
        self.config = config
        self.live = live
        self.settings = config.settings
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last_check = 0.0
        self._thread: threading.Thread | None = None
        self._etag: str | None = None
        self._last_modified: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="faq-bot-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def check_soon(self) -> None:
        """Look for a new archive at index_url now (or once MIN_CHECK_SECONDS have passed since the
        last look), instead of waiting for the next index_check_minutes."""
        self._wake.set()

    def _run(self) -> None:
        try:
            if self.live.build is None:
                self._prepare()
            if self.settings.index_url:
                self._follow_loop()
        except Exception as exc:  # noqa: BLE001 -- a bug here must not pass silently, nor stop the server
            log.exception("the index keeper stopped: %s", exc)
            if self.live.build is None:
                self.live.set_status("failed", detail=f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ at start
    def _prepare(self) -> None:
        url = self.settings.index_url
        if url:
            try:
                self._pull(url)
                if self.live.load_now():
                    return
                log.warning("the index pulled from %s does not load; building from the sources instead", url)
            except EXPECTED as exc:
                log.warning("could not pull the index from %s (%s); building from the sources instead", url, exc)
        self._build()

    def _pull(self, url: str) -> None:
        self.live.set_status("pulling", 0.0, f"downloading {url}")

        def progress(done: int, total: int | None) -> None:
            self.live.set_status("pulling", done / total if total else None, f"downloading {url}")

        report, fetched = artifact.pull(url, Path(self.settings.index_dir), self.settings.embed_backend,
                                        self.settings.embed_model, progress=progress)
        self._remember(fetched)
        log.info(report.summary())
        self.live.set_status("loading", 1.0, f"loading {report.build_dir.name}")

    def _build(self) -> None:
        self.live.set_status("building", 0.0, "reading the sources")
        try:
            clone_missing(self.config.sources, log=lambda msg: (log.info(msg), self.live.set_status(
                "building", 0.0, msg)))

            def progress(done: int, total: int) -> None:
                self.live.set_status("building", done / total if total else None, f"embedding {done}/{total}")

            report = ingest(self.config, progress=False, log=log.warning, on_progress=progress)
            log.info(report.summary())
            self.live.set_status("loading", 1.0, f"loading {report.build_dir.name if report.build_dir else ''}")
            if not self.live.load_now():
                self.live.set_status("failed", detail="the new build does not load; see the server log")
        except EXPECTED as exc:
            log.error("could not build the index: %s", exc)
            self.live.set_status("failed", detail=str(exc))

    # ------------------------------------------------------------------ afterwards
    def _follow_loop(self) -> None:
        minutes = self.settings.index_check_minutes
        while not self._stop.is_set():
            self._wake.wait(minutes * 60 if minutes > 0 else None)
            if self._stop.is_set():
                return
            asked = self._wake.is_set()
            self._wake.clear()
            if asked:                    # woken by check_soon: not more often than MIN_CHECK_SECONDS
                wait = self._last_check + MIN_CHECK_SECONDS - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
            self._last_check = time.monotonic()
            self._follow()

    def _follow(self) -> None:
        url = self.settings.index_url
        try:
            report, fetched = artifact.pull(url, Path(self.settings.index_dir), self.settings.embed_backend,
                                            self.settings.embed_model, etag=self._etag,
                                            last_modified=self._last_modified)
        except EXPECTED as exc:
            log.warning("could not check %s for a new index (%s); still answering from %s", url, exc,
                        self.live.build.name if self.live.build else "nothing")
            return
        if fetched is None or report is None:
            return                                     # 304: nothing new
        self._remember(fetched)
        if not report.unchanged:
            log.info(report.summary())
            self.live.load_now()

    def _remember(self, fetched: artifact.Fetched | None) -> None:
        if fetched is not None:
            self._etag, self._last_modified = fetched.etag, fetched.last_modified
