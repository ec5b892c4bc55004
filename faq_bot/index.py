"""The index folder: FAISS vectors, a bm25s index over jieba words, the chunk store and a manifest.

Only this module reads or writes files under the index folder. Layout:

    index/
      CURRENT              name of the live build (replaced atomically)
      build-<time>/        one complete build
        manifest.json      format version, backend, model, dim, counts, per-page hashes, build time
        chunks.jsonl       one chunk per line, in FAISS order
        dense.faiss        IndexFlatIP over L2-normalised vectors (exact; < 1 ms at this size)
        bm25/              bm25s' own numpy/json files (no pickle)
        terms.json         English -> Chinese term pairs the pages write (bridge.mine_term_pairs)
        sentences.npy      one vector per distinct sentence of the chunks (float16), to score answers
        sentences.json     the sentences' keys (textproc.sentence_key), in row order

A build is written in full into a temporary folder, then CURRENT is switched to it with an atomic
rename, so a crash or Ctrl-C mid-ingest leaves the previous build live and loadable, and a running
server can notice a new build and swap to it between requests.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .chunk import Chunk
from .embed import passive_openmp

FORMAT_VERSION = 1
POINTER = "CURRENT"


class IndexLoadError(RuntimeError):
    """No usable index: missing, corrupt, or built with another model. The message says what to do."""


@dataclass
class Manifest:
    format_version: int
    backend: str
    model: str
    dim: int
    chunk_count: int
    page_count: int
    page_hashes: dict[str, str]
    built_at: str
    chunk_max_chars: int
    files: dict[str, str] = field(default_factory=dict)   # file name -> sha256, to detect corruption
    # how text became BM25 words, match keys and term pairs (textproc.analyser_fingerprint +
    # the bridge's version): a change rebuilds the lexical side
    analyser: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, sort_keys=True)


def page_hashes(chunks: list[Chunk]) -> dict[str, str]:
    """One hash per page over its chunks' hashes: tells which pages changed between builds."""
    by_page: dict[str, list[str]] = {}
    for c in chunks:
        by_page.setdefault(c.page_id, []).append(c.content_hash)
    return {p: hashlib.sha256("".join(h).encode()).hexdigest()[:20] for p, h in sorted(by_page.items())}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class LoadedIndex:
    """A build loaded into memory, ready to search."""

    build_dir: Path
    manifest: Manifest
    chunks: list[Chunk]
    dense: object          # faiss.Index
    bm25: object           # bm25s.BM25
    term_pairs: dict[str, list[str]] = field(default_factory=dict)   # English term -> Chinese terms
    sentence_vectors: np.ndarray | None = None    # float16, one row per sentence key
    sentence_rows: dict[str, int] = field(default_factory=dict)

    def vectors(self) -> np.ndarray:
        return self.dense.reconstruct_n(0, self.dense.ntotal)


def current_build(index_dir: Path) -> Path | None:
    """The live build folder named by CURRENT, or None when there is no index yet."""
    try:
        name = (Path(index_dir) / POINTER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return Path(index_dir) / name if name else None


@contextlib.contextmanager
def write_lock(index_dir: Path):
    """One ingest at a time per index folder."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexLoadError(f"another `faq-bot ingest` or `faq-bot index pull` is writing {index_dir}; "
                                 "wait for it to finish") from None
        yield


def write_index(index_dir: Path, chunks: list[Chunk], vectors: np.ndarray, bm25_tokens: list[list[str]],
                backend: str, model: str, chunk_max_chars: int, keep_builds: int = 2,
                term_pairs: dict[str, list[str]] | None = None, analyser: dict[str, str] | None = None,
                sentence_keys: list[str] | None = None, sentence_vectors: np.ndarray | None = None) -> Path:
    """Write a complete build beside the live one and switch CURRENT to it."""
    import bm25s

    passive_openmp()
    import faiss

    index_dir = Path(index_dir)
    tmp = new_build_folder(index_dir)
    try:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dense = faiss.IndexFlatIP(vectors.shape[1])
        if len(vectors):
            dense.add(vectors)
        faiss.write_index(dense, str(tmp / "dense.faiss"))
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
            for c in chunks:
                f.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        bm25 = bm25s.BM25()
        bm25.index([toks or [""] for toks in bm25_tokens] or [[""]], show_progress=False)
        bm25.save(str(tmp / "bm25"), show_progress=False)
        (tmp / "terms.json").write_text(json.dumps(term_pairs or {}, ensure_ascii=False, sort_keys=True),
                                        encoding="utf-8")
        if sentence_keys is not None:
            rows = np.zeros((0, vectors.shape[1])) if sentence_vectors is None else sentence_vectors
            if len(rows) != len(sentence_keys):
                raise ValueError(f"{len(sentence_keys)} sentence keys but {len(rows)} sentence vectors")
            np.save(tmp / "sentences.npy", np.asarray(rows, dtype=np.float16).reshape(len(sentence_keys), vectors.shape[1]))
            (tmp / "sentences.json").write_text(json.dumps(sentence_keys), encoding="utf-8")
        files = {p.relative_to(tmp).as_posix(): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = Manifest(
            format_version=FORMAT_VERSION, backend=backend, model=model, dim=int(vectors.shape[1]),
            chunk_count=len(chunks), page_count=len({c.page_id for c in chunks}),
            page_hashes=page_hashes(chunks), built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            chunk_max_chars=chunk_max_chars, files=files, analyser=dict(analyser or {}))
        (tmp / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return switch_to(index_dir, tmp, keep_builds)


def new_build_folder(index_dir: Path) -> Path:
    """An empty temporary folder inside `index_dir` to write a build into, then `switch_to` it."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    name = time.strftime("build-%Y%m%d-%H%M%S-") + f"{time.time_ns() % 1_000_000:06d}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    return tmp


def switch_to(index_dir: Path, tmp: Path, keep_builds: int = 2) -> Path:
    """Make the complete build in `tmp` (from `new_build_folder`) the live one: rename it into place
    and replace CURRENT atomically; drop builds older than the newest `keep_builds`. Every way a
    build arrives (ingest, `faq-bot index pull`) goes through here."""
    index_dir = Path(index_dir)
    name = tmp.name.removeprefix(".tmp-")
    try:
        final = index_dir / name
        os.rename(tmp, final)
        pointer_tmp = index_dir / f".{POINTER}.tmp"
        pointer_tmp.write_text(name + "\n", encoding="utf-8")
        os.replace(pointer_tmp, index_dir / POINTER)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_old_builds(index_dir, keep=keep_builds)
    return final


def remove_temporary(index_dir: Path) -> None:
    """Drop temporary folders left by interrupted ingests or pulls (call with the write lock held)."""
    for tmp in Path(index_dir).glob(".tmp-*"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_old_builds(index_dir: Path, keep: int) -> None:
    """Keep the newest `keep` builds: a server may still be reading the previous one."""
    live = current_build(index_dir)
    builds = sorted(p for p in index_dir.glob("build-*") if p.is_dir())
    for old in builds[:-keep] if keep else builds:
        if live is None or old.resolve() != live.resolve():
            shutil.rmtree(old, ignore_errors=True)


def read_manifest(build_dir: Path) -> Manifest:
    try:
        raw = json.loads((build_dir / "manifest.json").read_text(encoding="utf-8"))
        return Manifest(**raw)
    except FileNotFoundError:
        raise IndexLoadError(f"{build_dir}: manifest.json is missing; rebuild with `faq-bot ingest`") from None
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise IndexLoadError(f"{build_dir}: manifest.json is corrupt ({exc}); rebuild with `faq-bot ingest`") from None


def load_index(index_dir: Path, verify: bool = True) -> LoadedIndex:
    """Load the live build. Raises IndexLoadError with a fix when it is missing or damaged."""
    index_dir = Path(index_dir)
    build = current_build(index_dir)
    if build is None or not build.is_dir():
        raise IndexLoadError(f"no index in {index_dir}: run `faq-bot ingest` first")
    return load_build(build, verify=verify)


def load_build(build: Path, verify: bool = True) -> LoadedIndex:
    """Load one build folder (the live one, or one about to be switched to)."""
    import bm25s

    passive_openmp()
    import faiss

    manifest = read_manifest(build)
    if manifest.format_version != FORMAT_VERSION:
        raise IndexLoadError(f"{build}: index format {manifest.format_version}, this faq-bot reads "
                             f"{FORMAT_VERSION}; rebuild with `faq-bot ingest`")
    if verify:
        for rel, digest in manifest.files.items():
            path = build / rel
            if not path.is_file() or _sha256(path) != digest:
                raise IndexLoadError(f"{build}: {rel} is missing or corrupt; rebuild with `faq-bot ingest`")
    try:
        chunks = [Chunk(**json.loads(line)) for line in
                  (build / "chunks.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        dense = faiss.read_index(str(build / "dense.faiss"))
        bm25 = bm25s.BM25.load(str(build / "bm25"), mmap=False)
        terms_file = build / "terms.json"
        term_pairs = json.loads(terms_file.read_text(encoding="utf-8")) if terms_file.is_file() else {}
        if not isinstance(term_pairs, dict):
            raise ValueError("terms.json is not a mapping")
        sentence_vectors, sentence_rows = None, {}
        if (build / "sentences.npy").is_file():
            sentence_vectors = np.load(build / "sentences.npy", allow_pickle=False)
            keys = json.loads((build / "sentences.json").read_text(encoding="utf-8"))
            if len(keys) != len(sentence_vectors) or (len(keys) and sentence_vectors.shape[1] != manifest.dim):
                raise ValueError(f"sentences.json ({len(keys)}) and sentences.npy {sentence_vectors.shape} disagree")
            sentence_rows = {k: i for i, k in enumerate(keys)}
    except Exception as exc:  # any parse failure means a damaged build
        raise IndexLoadError(f"{build}: cannot read index ({type(exc).__name__}: {exc}); "
                             "rebuild with `faq-bot ingest`") from None
    if dense.ntotal != len(chunks) or len(chunks) != manifest.chunk_count or dense.d != manifest.dim:
        raise IndexLoadError(f"{build}: chunk store ({len(chunks)}), vectors ({dense.ntotal}x{dense.d}) and "
                             f"manifest ({manifest.chunk_count}x{manifest.dim}) disagree; rebuild with `faq-bot ingest`")
    return LoadedIndex(build_dir=build, manifest=manifest, chunks=chunks, dense=dense, bm25=bm25,
                       term_pairs=term_pairs, sentence_vectors=sentence_vectors, sentence_rows=sentence_rows)
