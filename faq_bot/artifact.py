"""One-file index archives: `faq-bot index pack`, `pull` and `publish`.

A prebuilt index travels as one gzip-compressed tar holding, in this order:

    SHA256SUMS       "<sha256>  <name>" for every other member (the format `sha256sum -c` reads)
    manifest.json    the build's manifest (index.Manifest: model, counts, per-file hashes)
    chunks.jsonl, dense.faiss, bm25/..., terms.json, sentences.*   the build's files

Pulling checks everything before anything goes live: the archive must read to its end (a
truncated download fails here), every member must be listed in SHA256SUMS with its hash and no
listed file may be missing, the manifest must agree with the list and name the configured
embedding model, and the unpacked build must load. Only then is it installed, as a new build,
through the same atomic switch ingest uses (`index.switch_to`); on any failure the live index
stays as it was. Only this module and `index.py` read or write index files.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from .index import (FORMAT_VERSION, IndexLoadError, Manifest, current_build, load_build, new_build_folder,
                    read_manifest, remove_temporary, switch_to, write_lock)

SUMS = "SHA256SUMS"
MANIFEST = "manifest.json"
# Unpacking stops past this many bytes, so a hostile or mistaken archive cannot fill the disk: the
# whole portal's build is 23 MB unpacked (122 pages, 3,327 chunks, measured 2026-12-01); 2 GB leaves
# room for a portal 80 times larger.
MAX_UNPACKED_BYTES = 2 * 1024**3
# Seconds without a byte from the server before a download is given up.
NETWORK_TIMEOUT = 60
_BLOCK = 1 << 20

Progress = Callable[[int, "int | None"], None]     # (bytes done, total bytes or None)


class ArchiveError(IndexLoadError):
    """An archive or a location that cannot be used; the message says what is wrong and what to do.
    Nothing was installed."""


@dataclass
class Fetched:
    """A downloaded (or local) archive and the validators to ask the server whether it changed."""

    path: Path
    size: int
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class PullReport:
    source: str
    manifest: Manifest
    build_dir: Path
    unchanged: bool = False        # the archive holds the build already live: nothing installed
    bytes: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        m = self.manifest
        what = f"{m.page_count} pages, {m.chunk_count} chunks, {m.backend}:{m.model}, built {m.built_at}"
        if self.unchanged:
            return f"index is up to date with {self.source} ({what})"
        return f"installed {self.build_dir.name} from {self.source} ({what}; {size_text(self.bytes)}, {self.seconds:.1f} s)"


def size_text(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------- pack

def pack(index_dir: Path, output: Path) -> Manifest:
    """Write the live build of `index_dir` to `output` as one archive (written beside it and renamed
    into place, so `output` is never half-written). Refuses a live build whose files do not match
    its manifest."""
    index_dir, output = Path(index_dir), Path(output)
    build = current_build(index_dir)
    if build is None or not build.is_dir():
        raise IndexLoadError(f"no index in {index_dir}: run `faq-bot ingest` or `faq-bot index pull` first")
    manifest = read_manifest(build)
    sums = {}
    for rel, digest in sorted(manifest.files.items()):
        path = build / rel
        if not path.is_file() or _sha256(path) != digest:
            raise IndexLoadError(f"{build}: {rel} is missing or corrupt; rebuild with `faq-bot ingest` before packing")
        sums[rel] = digest
    sums[MANIFEST] = _sha256(build / MANIFEST)
    sums_text = "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())).encode()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.parent / f".{output.name}.tmp-{os.getpid()}"
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(SUMS)
            info.size, info.mtime, info.mode = len(sums_text), int(time.time()), 0o644
            tar.addfile(info, _BytesReader(sums_text))
            for name in [MANIFEST, *sorted(manifest.files)]:
                info = tar.gettarinfo(str(build / name), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = 0o644
                with open(build / name, "rb") as f:
                    tar.addfile(info, f)
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return manifest


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        chunk, self._pos = self._data[self._pos:end], min(end, len(self._data))
        return chunk


# ---------------------------------------------------------------------------------------- fetch

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def fetch(source: str, into: Path, progress: Progress | None = None, etag: str | None = None,
          last_modified: str | None = None) -> Fetched | None:
    """Download `source` (an http(s) URL, a file:// URL or a path) to the file `into`. Returns None
    when the server answers 304 to the validators of the previous download (nothing changed)."""
    match = _SCHEME.match(source)
    scheme = match.group(1).lower() if match else None
    if scheme is None or scheme == "file":
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(source).path) if scheme else source).expanduser()
        if not path.is_file():
            raise ArchiveError(f"no index archive at {path}: give the path of a file written by "
                               "`faq-bot index pack`, or an http(s) URL")
        size = path.stat().st_size
        with open(path, "rb") as src, open(into, "wb") as dst:
            _copy(src, dst, size, progress, source)
        return Fetched(into, size)
    if scheme not in ("http", "https"):
        raise ArchiveError(f"cannot download {source}: unsupported URL scheme {scheme!r}; "
                           "give an http(s) URL or a file path")
    headers = {"User-Agent": "faq-bot"}
    host = (urllib.parse.urlparse(source).hostname or "").lower()
    token = os.environ.get("HF_TOKEN")
    if token and (host == "huggingface.co" or host.endswith(".huggingface.co") or host.endswith(".hf.co")):
        headers["Authorization"] = f"Bearer {token}"         # a private dataset repo
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        response = urllib.request.urlopen(urllib.request.Request(source, headers=headers), timeout=NETWORK_TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return None
        raise ArchiveError(f"cannot download {source}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ArchiveError(f"cannot download {source}: {reason}") from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        try:
            with open(into, "wb") as dst:
                size = _copy(response, dst, total, progress, source)
        except (OSError, ValueError) as exc:   # connection reset, timeout, http.client.IncompleteRead
            raise ArchiveError(f"download of {source} failed: {exc}; the index was left as it was") from None
        return Fetched(into, size, response.headers.get("ETag"), response.headers.get("Last-Modified"))


def _copy(src, dst, total: int | None, progress: Progress | None, source: str) -> int:
    done = 0
    read = getattr(src, "read1", src.read)      # what has arrived, not a full block: progress moves
    for block in iter(lambda: read(_BLOCK), b""):
        dst.write(block)
        done += len(block)
        if progress:
            progress(done, total)
    if total is not None and done < total:
        raise ArchiveError(f"download of {source} ended after {done} of {total} bytes; the index was left as it was")
    return done


# ---------------------------------------------------------------------------------------- verify

def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or any(p in ("..", ".", "") for p in path.parts) or "\\" in name:
        raise ArchiveError(f"the archive holds an unsafe path {name!r}: not an index archive")
    return path


def unpack(archive: Path, into: Path) -> Manifest:
    """Unpack and verify an archive into the empty folder `into`; its manifest if everything checks."""
    written: dict[str, str] = {}
    total = 0
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                rel = _member_path(member.name)
                if member.isdir():
                    continue
                if not member.isfile():
                    raise ArchiveError(f"the archive holds {member.name!r}, which is not a regular file: not an index archive")
                if member.name in written:
                    raise ArchiveError(f"the archive holds {member.name!r} twice: not an index archive")
                total += member.size
                if total > MAX_UNPACKED_BYTES:
                    raise ArchiveError(f"the archive unpacks to more than {MAX_UNPACKED_BYTES // 1024**2} MB: "
                                       "not an index archive")
                target = into.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                with tar.extractfile(member) as src, open(target, "wb") as dst:
                    for block in iter(lambda: src.read(_BLOCK), b""):
                        h.update(block)
                        dst.write(block)
                written[member.name] = h.hexdigest()
    except ArchiveError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"the archive is truncated or corrupt ({exc}); the index was left as it was") from None
    if SUMS not in written:
        raise ArchiveError(f"the archive has no {SUMS}: not written by `faq-bot index pack`")
    listed = _read_sums(into / SUMS)
    del written[SUMS]
    missing = sorted(set(listed) - set(written))
    extra = sorted(set(written) - set(listed))
    bad = sorted(n for n in set(listed) & set(written) if listed[n] != written[n])
    if missing or extra or bad:
        what = (f"missing {missing}" if missing else f"unlisted {extra}" if extra else f"checksum mismatch in {bad}")
        raise ArchiveError(f"the archive is corrupt ({what}); the index was left as it was")
    manifest = read_manifest(into)
    if {**manifest.files, MANIFEST: listed.get(MANIFEST)} != listed:
        raise ArchiveError(f"the archive's {SUMS} and manifest.json disagree about its files; not installed")
    if manifest.format_version != FORMAT_VERSION:
        raise ArchiveError(f"the archive holds index format {manifest.format_version}; this faq-bot reads "
                           f"{FORMAT_VERSION}: pull an archive made by this version, or rebuild with `faq-bot ingest`")
    (into / SUMS).unlink()
    return manifest


def _read_sums(path: Path) -> dict[str, str]:
    sums = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or not re.fullmatch(r"[0-9a-f]{64}", digest) or not name:
            raise ArchiveError(f"the archive's {SUMS} is malformed (line {line[:60]!r}); not installed")
        sums[name] = digest
    return sums


def check_model(manifest: Manifest, backend: str, model: str, source: str) -> None:
    if (manifest.backend, manifest.model) != (backend, model):
        raise ArchiveError(f"{source} was built with {manifest.backend}:{manifest.model} but the config asks for "
                           f"{backend}:{model}; pull an archive built with the configured model (or change "
                           "settings.embed_model); the index was left as it was")


# ---------------------------------------------------------------------------------------- pull

def install(fetched: Fetched, index_dir: Path, backend: str, model: str, source: str) -> PullReport:
    """Verify a fetched archive and switch `index_dir` to it, unless it holds the live build already."""
    started = time.perf_counter()
    index_dir = Path(index_dir)
    with write_lock(index_dir):
        remove_temporary(index_dir)
        tmp = new_build_folder(index_dir)
        try:
            manifest = unpack(fetched.path, tmp)
            check_model(manifest, backend, model, source)
            live = current_build(index_dir)
            if live is not None and live.is_dir():
                try:
                    same = read_manifest(live).files == manifest.files
                except IndexLoadError:
                    same = False
                if same:
                    shutil.rmtree(tmp, ignore_errors=True)
                    return PullReport(source, manifest, live, unchanged=True, bytes=fetched.size,
                                      seconds=time.perf_counter() - started)
            try:
                load_build(tmp, verify=False)     # every file was checked against SHA256SUMS above
            except IndexLoadError as exc:
                raise ArchiveError(f"the archive's build does not load ({exc}); the index was left as it was") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        build = switch_to(index_dir, tmp)
    return PullReport(source, manifest, build, bytes=fetched.size, seconds=time.perf_counter() - started)


def pull(source: str, index_dir: Path, backend: str, model: str, progress: Progress | None = None,
         etag: str | None = None, last_modified: str | None = None) -> tuple[PullReport | None, Fetched | None]:
    """Download, verify and install an archive. (None, None) when the server says it has not
    changed since the download that gave `etag` / `last_modified`."""
    started = time.perf_counter()
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    download = index_dir / f".download-{os.getpid()}-{time.time_ns()}.tar.gz"
    try:
        fetched = fetch(source, download, progress, etag, last_modified)
        if fetched is None:
            return None, None
        report = install(fetched, index_dir, backend, model, source)
    finally:
        download.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - started
    return report, fetched


# ---------------------------------------------------------------------------------------- publish

_HF = re.compile(r"^hf://(datasets|models|spaces)/([^/]+)/([^/]+)/(.+)$")


def verify(archive: Path, backend: str, model: str, scratch: Path) -> Manifest:
    """Check an archive as `pull` would (in `scratch`, which is removed), without installing it."""
    scratch.mkdir(parents=True, exist_ok=False)
    try:
        manifest = unpack(archive, scratch)
        check_model(manifest, backend, model, str(archive))
        try:
            load_build(scratch, verify=False)
        except IndexLoadError as exc:
            raise ArchiveError(f"{archive}: its build does not load ({exc})") from None
        return manifest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def publish(archive: Path, dest: str, backend: str, model: str) -> str:
    """Check `archive` as a pull would, then put it at `dest`: a file path (written beside and renamed
    into place, so a server reading it never sees half a file; an existing folder gets the archive's
    name) or hf://datasets/OWNER/NAME/PATH (a commit to a Hugging Face repo, token from $HF_TOKEN).
    Returns the URL or path to pull it from."""
    archive = Path(archive)
    if not archive.is_file():
        raise ArchiveError(f"no archive at {archive}: write one with `faq-bot index pack --output FILE`")
    verify(archive, backend, model, archive.parent / f".verify-{os.getpid()}-{time.time_ns()}")
    hub = _HF.match(dest)
    if hub:
        kind, owner, name, path_in_repo = hub.groups()
        repo_type = kind.rstrip("s")
        import logging

        from huggingface_hub import HfApi

        hub_log = logging.getLogger("huggingface_hub")
        level = hub_log.level
        hub_log.setLevel(logging.ERROR)          # its retry notices would bury the one line below
        try:
            HfApi().upload_file(path_or_fileobj=str(archive), path_in_repo=path_in_repo,
                                repo_id=f"{owner}/{name}", repo_type=repo_type,
                                commit_message=f"faq-bot index {time.strftime('%Y-%m-%d %H:%M:%S %z')}")
        except Exception as exc:  # noqa: BLE001 -- network, auth, missing repo: one line for the user
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ArchiveError(f"cannot publish to {dest}: {type(exc).__name__}: {first} "
                               "(is $HF_TOKEN set with write access to that repo?)") from None
        finally:
            hub_log.setLevel(level)
        prefix = "" if repo_type == "model" else f"{kind}/"
        return f"https://huggingface.co/{prefix}{owner}/{name}/resolve/main/{path_in_repo}"
    if _SCHEME.match(dest) and not dest.lower().startswith("file://"):
        raise ArchiveError(f"cannot publish to {dest}: give a file path or hf://datasets/OWNER/NAME/PATH")
    target = Path(urllib.parse.unquote(urllib.parse.urlparse(dest).path) if dest.lower().startswith("file://")
                  else dest).expanduser()
    if target.is_dir():
        target = target / archive.name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    try:
        shutil.copyfile(archive, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return str(target.resolve())

