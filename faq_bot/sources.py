"""Find the page files of each configured source and map each one to its public URL."""
from __future__ import annotations

import fnmatch
import posixpath
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .config import ConfigError, Source


class SourceMissingError(ConfigError):
    """A configured source folder does not exist: ingest must stop rather than build a smaller index."""


@dataclass(frozen=True)
class SourceFile:
    source: str
    path: str          # POSIX path relative to the source folder
    abs_path: Path


def _matches(rel: str, patterns: tuple[str, ...]) -> bool:
    for pat in patterns:
        if fnmatch.fnmatchcase(rel, pat):
            return True
        # "**/*.md" should also match "x.md" at the top level
        if pat.startswith("**/") and fnmatch.fnmatchcase(rel, pat[3:]):
            return True
    return False


def list_files(source: Source) -> list[SourceFile]:
    """The files of one source that its include/exclude globs select, in a stable order."""
    root = source.path
    if not root.is_dir():
        hint = f" (or clone it: git clone {source.git} {root})" if source.git else ""
        raise SourceMissingError(
            f"source {source.name!r}: folder not found: {root}. Point at a checkout with "
            f"--source {source.name}=PATH or --corpus DIR{hint}, or run `faq-bot ingest --clone`."
        )
    found = []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue  # .git, .github, editor files
        if _matches(rel, source.include) and not _matches(rel, source.exclude):
            found.append(SourceFile(source.name, rel, p))
    return found


def page_url(source: Source, rel_path: str, permalink: str | None = None) -> str:
    """The public URL of a page, by the source's url_rule.

    - jekyll: `X.md` is served at `/X`, `dir/index.md` at `/dir/`, `.html` as is; a front-matter
      permalink wins (as Jekyll does).
    - github: `blob/main/` style: base_url + path.
    - path: base_url + path.
    """
    base = source.base_url if source.base_url.endswith("/") else source.base_url + "/"
    if source.url_rule == "jekyll":
        if permalink:
            return base + quote(permalink.lstrip("/"), safe="/#")
        stem, ext = posixpath.splitext(rel_path)
        if ext.lower() in (".md", ".markdown"):
            if posixpath.basename(stem).lower() == "index":
                stem = posixpath.dirname(stem)
                return base + (quote(stem, safe="/") + "/" if stem else "")
            return base + quote(stem, safe="/")
    return base + quote(rel_path, safe="/")


def clone_missing(sources: tuple[Source, ...], log=print) -> None:
    """`git clone --depth 1` every source whose folder is missing and that names a git URL."""
    for src in sources:
        if src.path.is_dir():
            continue
        if not src.git:
            raise SourceMissingError(f"source {src.name!r}: folder {src.path} is missing and no git URL is configured")
        log(f"cloning {src.git} into {src.path}")
        src.path.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["git", "clone", "--depth", "1", src.git, str(src.path)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise SourceMissingError(f"source {src.name!r}: git clone {src.git} failed: {result.stderr.strip()}")
