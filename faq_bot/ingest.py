"""`faq-bot ingest`: sources -> clean -> chunk -> embed (only what changed) -> index.

Embedding is the only slow step (about 20 minutes for the whole portal on 2 cores, chunks and sentences), so vectors of
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
from .bridge import BRIDGE_VERSION, mine_term_pairs
from .textproc import analyser_fingerprint, is_navigation, sentence_key, split_sentences, word_cutter


def analyser() -> dict[str, str]:
    """What the lexical side of a build depends on besides the chunks (see Manifest.analyser)."""
    return {**analyser_fingerprint(), "bridge": str(BRIDGE_VERSION)}


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
    sentences_embedded: int = 0
    sentences_reused: int = 0
    unchanged: bool = False
    analyser_changed: bool = False
    build_dir: Path | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        if self.unchanged:
            head = f"index is up to date: {self.pages} pages, {self.chunks} chunks, nothing changed"
        else:
            head = (f"indexed {self.pages} pages, {self.chunks} chunks: {self.embedded} embedded, "
                    f"{self.reused} reused; sentences: {self.sentences_embedded} embedded, "
                    f"{self.sentences_reused} reused; pages added {len(self.pages_added)}, changed "
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

    return tqdm(total=total, unit="text", desc="embedding", disable=not enabled, file=sys.stderr)


def answer_sentences(chunks: list[Chunk]) -> list[str]:
    """The distinct sentences an answer may quote, in order of first appearance: every sentence of
    every chunk but navigation (link titles, bare URLs), which the answer policy never quotes."""
    out: dict[str, None] = {}
    for c in chunks:
        for sentence in split_sentences(c.text):
            if not is_navigation(sentence, c.section):
                out.setdefault(sentence, None)
    return list(out)


def ingest(config: Config, *, progress: bool | None = None, log: Callable[[str], None] = print,
           embedder: Embedder | None = None,
           on_progress: Callable[[int, int], None] | None = None) -> IngestReport:
    """Build or update the index of `config`'s sources. Raises SourceMissingError before any work
    if a source folder is missing, so a typo never produces a smaller index. `on_progress(done,
    total)` follows the embedding (the slow step), e.g. for a server's "building 42%"."""
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
        fingerprint = analyser()
        sentences = answer_sentences(chunks)
        sentence_keys = [sentence_key(t) for t in sentences]
        if (previous and previous.manifest.analyser == fingerprint
                and set(sentence_keys) <= set(previous.sentence_rows)
                and [c.to_dict() for c in previous.chunks] == [c.to_dict() for c in chunks]):
            report.unchanged, report.build_dir = True, previous.build_dir
            report.seconds = time.perf_counter() - started
            return report

        vectors, todo = _reuse_vectors(chunks, previous)
        report.reused = len(chunks) - len(todo)
        report.embedded = len(todo)
        sentence_vectors, sentence_todo = _reuse_sentence_vectors(sentence_keys, previous)
        report.sentences_reused = len(sentences) - len(sentence_todo)
        report.sentences_embedded = len(sentence_todo)
        if todo or sentence_todo:
            embedder = embedder or embedder_from_settings(settings)
            if previous is not None and embedder.dim != previous.manifest.dim:
                raise IndexLoadError(f"model dimension {embedder.dim} differs from the index's {previous.manifest.dim}")
            total, done = len(todo) + len(sentence_todo), [0]

            def step(n: int) -> None:
                bar.update(n)
                done[0] += n                 # counted here: a disabled tqdm bar does not count
                if on_progress is not None:
                    on_progress(done[0], total)

            with _progress_bar(total, progress) as bar:
                if todo:
                    texts = [chunks[i].embed_text() for i in todo]
                    fresh = embed_in_batches(embedder, texts, settings.embed_batch_size, step)
                    if vectors is None:
                        vectors = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
                    vectors[todo] = fresh
                if sentence_todo:
                    # shortest first: a batch is padded to its longest text
                    by_length = sorted(sentence_todo, key=lambda i: len(sentences[i]))
                    fresh = embed_in_batches(embedder, [sentences[i] for i in by_length],
                                             settings.embed_batch_size, step)
                    if sentence_vectors is None:
                        sentence_vectors = np.zeros((len(sentences), embedder.dim), dtype=np.float32)
                    sentence_vectors[by_length] = fresh
        if previous and previous.manifest.analyser != fingerprint:
            report.analyser_changed = True
            log("text analysis changed since the last build (normaliser, dictionary, stop words, sentence "
                "rules or term mining): rebuilding the word index")
        cutter = word_cutter()
        tokens = [cutter.tokens(c.embed_text()) for c in chunks]
        pairs = mine_term_pairs((c.embed_text() for c in chunks), cutter.words)
        report.build_dir = write_index(index_dir, chunks, vectors, tokens, backend, model,
                                       settings.chunk_max_chars, term_pairs=pairs, analyser=fingerprint,
                                       sentence_keys=sentence_keys, sentence_vectors=sentence_vectors)
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


def _reuse_sentence_vectors(keys: list[str], previous: LoadedIndex | None) -> tuple[np.ndarray | None, list[int]]:
    """Vectors of sentences the live build already has (by text); the rest to embed."""
    if previous is None or previous.sentence_vectors is None:
        return None, list(range(len(keys)))
    rows = previous.sentence_rows
    vectors = np.zeros((len(keys), previous.sentence_vectors.shape[1]), dtype=np.float32)
    todo = []
    for i, key in enumerate(keys):
        row = rows.get(key)
        if row is None:
            todo.append(i)
        else:
            vectors[i] = previous.sentence_vectors[row]
    return vectors, todo
