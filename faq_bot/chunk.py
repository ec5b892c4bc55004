"""Cut pages into chunks: never across two sections, long sections at sentence ends.

Each chunk carries what a citation needs (page title, heading path, the section's anchor) and a
content hash, so a re-ingest embeds only chunks whose text changed.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Iterable

from .clean import Page, Section
from .textproc import split_sentences


@dataclass(frozen=True)
class Chunk:
    id: str            # stable across ingests: page, section number, part number
    source: str
    path: str
    url: str           # the page's URL, without fragment
    anchor: str        # the section's fragment without '#', "" for text before any heading
    title: str
    section: str       # heading path, " > "-joined
    text: str
    content_hash: str  # of the text that is embedded (heading context + text)

    @property
    def page_id(self) -> str:
        return f"{self.source}/{self.path}"

    @property
    def link(self) -> str:
        return f"{self.url}#{self.anchor}" if self.anchor else self.url

    def embed_text(self) -> str:
        """What the embedding model and BM25 see: where the text sits, then the text."""
        return embed_text(self.title, self.section, self.text)

    def to_dict(self) -> dict:
        return asdict(self)


def embed_text(title: str, section: str, text: str) -> str:
    context = title if not section or section == title else f"{title} > {section}"
    return f"{context}\n{text}"


def _hard_split(sentence: str, max_chars: int) -> list[str]:
    """A sentence longer than a chunk: cut at commas or spaces near the limit, else at the limit."""
    pieces = []
    while len(sentence) > max_chars:
        window = sentence[:max_chars]
        cut = max(window.rfind(c) for c in "，、,：: ")
        cut = cut + 1 if cut >= max_chars // 2 else max_chars
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        pieces.append(sentence)
    return pieces


def split_section(blocks: list[str], max_chars: int, min_chars: int) -> list[str]:
    """Pack a section's sentences into pieces of at most max_chars, keeping block breaks as
    newlines; a last piece shorter than min_chars takes whole sentences from the end of the one
    before, as long as both stay within max_chars."""
    # (sentence, what joins it to the one before): a newline between blocks; inside a block one
    # space where the page had white space after Western text ("vs. MCMC", "yes! No"), none
    # after Chinese text (there it is only the source's line wrapping)
    units: list[tuple[str, str]] = []
    for block in blocks:
        pos = None
        for sent in split_sentences(block):
            for piece in _hard_split(sent, max_chars):
                start = block.find(piece, pos or 0)
                start = start if start >= 0 else (pos or 0)
                spaced = pos is not None and start > pos and block[pos - 1].isascii()
                units.append((piece, "\n" if pos is None else " " if spaced else ""))
                pos = start + len(piece)

    def joined(group: list[tuple[str, str]]) -> str:
        return group[0][0] + "".join(sep + sent for sent, sep in group[1:])

    groups: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for unit in units:
        if current and len(joined(current + [unit])) > max_chars:
            groups.append(current)
            current = []
        current.append(unit)
    if current:
        while (groups and len(groups[-1]) > 1 and len(joined(current)) < min_chars
               and len(joined(groups[-1][-1:] + current)) <= max_chars):
            current.insert(0, groups[-1].pop())
        groups.append(current)
    return [joined(g) for g in groups]


def chunk_page(page: Page, max_chars: int, min_chars: int) -> list[Chunk]:
    chunks = []
    for s_no, section in enumerate(page.sections):
        heading_path = _display_path(page.title, section)
        for p_no, text in enumerate(split_section(section.blocks, max_chars, min_chars)):
            digest = hashlib.sha256(embed_text(page.title, heading_path, text).encode("utf-8")).hexdigest()[:20]
            chunks.append(Chunk(
                id=f"{page.page_id}::{s_no}.{p_no}",
                source=page.source, path=page.path, url=page.url,
                anchor=section.anchor or "", title=page.title, section=heading_path,
                text=text, content_hash=digest,
            ))
    return chunks


def _display_path(title: str, section: Section) -> str:
    headings = list(section.headings)
    if headings and headings[0] == title:
        headings = headings[1:]
    return " > ".join(headings)


def chunk_pages(pages: Iterable[Page], max_chars: int, min_chars: int) -> list[Chunk]:
    return [c for page in pages for c in chunk_page(page, max_chars, min_chars)]
