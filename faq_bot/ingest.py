"""`faq-bot ingest`: sources -> clean -> chunk -> embed (only what changed) -> index.

Embedding is the only slow step (about 10 minutes for the whole portal on 2 cores), so vectors of
chunks whose content hash is unchanged are taken from the live build instead of re-computed.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .chunk import Chunk, chunk_pages
from .clean import read_pages
from .config import Config
from .embed import Embedder, embed_in_batches, embedder_from_settings
from .index import (IndexLoadError, LoadedIndex, load_index, page_hashes, remove_temporary, write_index,
                    write_lock)
from .sources import list_files
from .textproc import word_cutter


@dataclass
class IngestReport:
    pages: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    pages_added: list[str] = field(default_factory=list)
    pages_changed: list[str] = field(default_factory=list)
    pages_removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unchanged: bool = False
    build_dir: Path | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        if self.unchanged:
            head = f"index is up to date: {self.pages} pages, {self.chunks} chunks, nothing changed"
        else:
            head = (f"indexed {self.pages} pages, {self.chunks} chunks: {self.embedded} embedded, "
                    f"{self.reused} reused; pages added {len(self.pages_added)}, changed "
                    f"{len(self.pages_changed)}, removed {len(self.pages_removed)}")
        tail = f"; {len(self.skipped)} file(s) skipped" if self.skipped else ""
        return f"{head}{tail} ({self.seconds:.1f} s)"


def _previous(index_dir: Path, backend: str, model: str, log: Callable[[str], None]) -> LoadedIndex | None:
    try:
        previous = load_index(index_dir)
    except IndexLoadError as exc:
        if "no index in" not in str(exc):
            log(f"previous index not reusable ({exc}); building from scratch")
        return None
    if (previous.manifest.backend, previous.manifest.model) != (backend, model):
        log(f"previous index was built with {previous.manifest.backend}:{previous.manifest.model}; "
            f"re-embedding everything with {backend}:{model}")
        return None
    return previous


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="chunk", desc="embedding", disable=not enabled, file=sys.stderr)


def ingest(config: Config, *, progress: bool | None = None, log: Callable[[str], None] = print,
           embedder: Embedder | None = None) -> IngestReport:
    """Build or update the index of `config`'s sources. Raises SourceMissingError before any work
    if a source folder is missing, so a typo never produces a smaller index."""
    started = time.perf_counter()
    settings = config.settings
    if progress is None:
        progress = sys.stderr.isatty()
    report = IngestReport()

    listed = [(source, list_files(source)) for source in config.sources]   # fails fast on a missing folder
    pages = read_pages(listed, settings.boilerplate_min_pages, warn=lambda msg: (report.skipped.append(msg), log(msg)))
    chunks = chunk_pages(pages, settings.chunk_max_chars, settings.chunk_min_chars)
    report.pages, report.chunks = len(pages), len(chunks)
    if not chunks:
        raise IndexLoadError("no text found in any source: nothing to index (check include/exclude globs)")

    backend, model = settings.embed_backend, settings.embed_model
    index_dir = Path(settings.index_dir)
    with write_lock(index_dir):
        remove_temporary(index_dir)
        previous = _previous(index_dir, backend, model, log)
        old_pages = previous.manifest.page_hashes if previous else {}
        new_pages = page_hashes(chunks)
        report.pages_added = sorted(set(new_pages) - set(old_pages))
        report.pages_removed = sorted(set(old_pages) - set(new_pages))
        report.pages_changed = sorted(p for p in new_pages if p in old_pages and old_pages[p] != new_pages[p])
        if previous and [c.to_dict() for c in previous.chunks] == [c.to_dict() for c in chunks]:
            report.unchanged, report.build_dir = True, previous.build_dir
            report.seconds = time.perf_counter() - started
            return report

        vectors, todo = _reuse_vectors(chunks, previous)
        report.reused = len(chunks) - len(todo)
        report.embedded = len(todo)
        if todo:
            embedder = embedder or embedder_from_settings(settings)
            if previous is not None and embedder.dim != previous.manifest.dim:
                raise IndexLoadError(f"model dimension {embedder.dim} differs from the index's {previous.manifest.dim}")
            texts = [chunks[i].embed_text() for i in todo]
            with _progress_bar(len(texts), progress) as bar:
                fresh = embed_in_batches(embedder, texts, settings.embed_batch_size, bar.update)
            if vectors is None:
                vectors = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
            vectors[todo] = fresh
        cutter = word_cutter()
        tokens = [cutter.tokens(c.embed_text()) for c in chunks]
        report.build_dir = write_index(index_dir, chunks, vectors, tokens, backend, model,
                                       settings.chunk_max_chars)
    report.seconds = time.perf_counter() - started
    return report


def _reuse_vectors(chunks: list[Chunk], previous: LoadedIndex | None) -> tuple[np.ndarray | None, list[int]]:
    """Vectors for chunks whose content hash the live build already has; the rest to embed."""
    if previous is None:
        return None, list(range(len(chunks)))
    old_vectors = previous.vectors()
    row_of = {c.content_hash: i for i, c in enumerate(previous.chunks)}
    vectors = np.zeros((len(chunks), old_vectors.shape[1]), dtype=np.float32)
    todo = []
    for i, c in enumerate(chunks):
        row = row_of.get(c.content_hash)
        if row is None:
            todo.append(i)
        else:
            vectors[i] = old_vectors[row]
    return vectors, todo
