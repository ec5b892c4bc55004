"""Turn page files (Markdown with Jekyll front matter, full HTML documents) into visible text,
split into sections by heading, and drop site boilerplate repeated across pages.

All format knowledge lives here: front matter, Markdown, HTML, encodings. Markdown is rendered to
HTML with markdown-it-py and then read by the same HTML walker as `.html` pages, so both formats
produce text the same way.
"""
from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable
from urllib.parse import quote

import yaml
from markdown_it import MarkdownIt
from selectolax.lexbor import LexborHTMLParser as HTMLParser, LexborNode as Node

from .config import Source
from .sources import SourceFile, page_url


class SkipFile(Exception):
    """This file cannot be read as a page; the message says why. Ingest warns and goes on."""


@dataclass
class Section:
    """A run of text under one heading. `headings` is the path from the top heading down."""

    headings: tuple[str, ...]
    anchor: str | None                  # fragment without '#', None for text before any heading
    blocks: list[str] = field(default_factory=list)
    level: int = 0                      # 1 for h1 ... 6 for h6, 0 for text before any heading


@dataclass
class Page:
    source: str
    path: str
    url: str
    title: str
    sections: list[Section]

    @property
    def page_id(self) -> str:
        return f"{self.source}/{self.path}"


# ---------------------------------------------------------------- reading bytes

def decode_text(data: bytes, name: str) -> str:
    """UTF-8 text or SkipFile: binary (NUL bytes), other encodings (e.g. Big5) and empty files."""
    if not data.strip():
        raise SkipFile(f"{name}: empty file")
    if b"\x00" in data[:8192]:
        raise SkipFile(f"{name}: binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipFile(f"{name}: not UTF-8 (byte {exc.start}); re-save it as UTF-8 to index it") from None
    if not text.strip():
        raise SkipFile(f"{name}: empty file")
    return text


# Jekyll's Liquid tags ({% include header.html %}, {{ page.title }}) are template directives, not
# text a visitor reads; the site renders them into HTML we do not have.
_LIQUID = re.compile(r"\{%-?.*?-?%\}|\{\{-?.*?-?\}\}", re.S)

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


def split_front_matter(text: str, name: str) -> tuple[dict, str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise SkipFile(f"{name}: malformed front matter: {str(exc).splitlines()[0]}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise SkipFile(f"{name}: front matter is not a mapping")
    return meta, text[match.end():]


# ---------------------------------------------------------------- anchors

def gfm_slug(text: str) -> str:
    """The heading id GitHub and kramdown's GFM parser derive: lower case, punctuation dropped
    (letters, digits, '_', '-' and spaces kept, any script), spaces turned into '-'."""
    slug = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return slug.replace(" ", "-")


def text_fragment(text: str) -> str:
    """A `:~:text=` fragment: browsers scroll to and highlight this text, for headings with no id."""
    return ":~:text=" + quote(text, safe="").replace("-", "%2D")


def _markdown_renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

    def add_heading_ids(state) -> None:
        seen: dict[str, int] = defaultdict(int)
        tokens = state.tokens
        for i, tok in enumerate(tokens):
            if tok.type != "heading_open" or i + 1 >= len(tokens):
                continue
            inline = tokens[i + 1]
            text = "".join(c.content for c in (inline.children or []) if c.type in ("text", "code_inline"))
            base = gfm_slug(text)
            slug = base if seen[base] == 0 else f"{base}-{seen[base]}"
            seen[base] += 1
            tok.attrSet("id", slug)

    md.core.ruler.push("heading_ids", add_heading_ids)
    return md


_MD = _markdown_renderer()

# ---------------------------------------------------------------- HTML -> blocks

_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "nav", "iframe", "object", "canvas",
              "button", "select", "textarea", "input", "head", "link", "meta", "footer", "_comment",
              "math", "audio", "video", "img"}
_BLOCK_TAGS = {"address", "article", "aside", "blockquote", "details", "dialog", "dd", "div", "dl", "dt",
               "fieldset", "figcaption", "figure", "header", "hgroup", "hr", "li", "main", "ol", "p",
               "pre", "section", "table", "thead", "tbody", "tfoot", "tr", "ul", "summary", "caption",
               "body", "html", "center"}
_HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_CELL_TAGS = {"td", "th"}
_WS = re.compile(r"\s+")


@dataclass
class _Heading:
    level: int
    text: str
    anchor: str


def _is_hidden(node: Node) -> bool:
    attrs = node.attributes
    if "hidden" in attrs or attrs.get("aria-hidden") == "true":
        return True
    style = (attrs.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "visibility:hidden" in style


def _first_text(node: Node) -> str:
    for t in node.traverse(include_text=True):
        if t.tag == "-text":
            s = _WS.sub(" ", t.text(deep=False) or "").strip()
            if s:
                return s
    return ""


def html_blocks(root: Node) -> list[str | _Heading]:
    """Visible text of an HTML tree in document order, as paragraph-level blocks and headings."""
    out: list[str | _Heading] = []
    buf: list[str] = []

    def flush() -> None:
        text = _WS.sub(" ", "".join(buf)).strip()
        buf.clear()
        if text and text.strip(" |") and not re.fullmatch(r"[\W_]+", text):
            out.append(text.strip(" |").strip())

    def walk(node: Node) -> None:
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                buf.append(child.text(deep=False) or "")
                continue
            if tag in _SKIP_TAGS or _is_hidden(child):
                continue
            if tag == "br":
                flush()
                continue
            if tag in _HEADING_TAGS:
                flush()
                text = _WS.sub(" ", child.text(deep=True, separator="")).strip()
                if text:
                    anchor = child.attributes.get("id") or text_fragment(_first_text(child) or text)
                    out.append(_Heading(_HEADING_TAGS[tag], text, anchor))
                continue
            if tag in _CELL_TAGS:
                if "".join(buf).strip():
                    buf.append(" | ")
                walk(child)
                continue
            is_block = tag in _BLOCK_TAGS
            if is_block:
                flush()
            walk(child)
            if is_block:
                flush()

    walk(root)
    flush()
    return out


def _sections(items: list[str | _Heading]) -> list[Section]:
    sections = [Section(headings=(), anchor=None)]
    stack: list[_Heading] = []
    for item in items:
        if isinstance(item, _Heading):
            while stack and stack[-1].level >= item.level:
                stack.pop()
            stack.append(item)
            sections.append(Section(headings=tuple(h.text for h in stack), anchor=item.anchor, level=item.level))
        else:
            sections[-1].blocks.append(item)
    return sections


# ---------------------------------------------------------------- files -> pages

def parse_page(source: Source, file: SourceFile, data: bytes) -> Page:
    """One file's visible text as a Page, or SkipFile with the reason."""
    name = f"{source.name}/{file.path}"
    text = decode_text(data, name)
    lower = file.path.lower()
    meta: dict = {}
    title = ""
    if lower.endswith((".md", ".markdown")):
        meta, body = split_front_matter(text, name)
        html = _MD.render(_LIQUID.sub("", body))
        tree = HTMLParser(html)
        root = tree.body or tree.root
        title = str(meta.get("title") or "").strip()
    elif lower.endswith((".html", ".htm")):
        tree = HTMLParser(text)
        if tree.root is None:
            raise SkipFile(f"{name}: not an HTML document")
        title_node = tree.css_first("head > title") or tree.css_first("title")
        title = _WS.sub(" ", title_node.text()).strip() if title_node else ""
        root = tree.body or tree.root
    else:
        raise SkipFile(f"{name}: unsupported file type (only Markdown and HTML are read)")
    if root is None:
        raise SkipFile(f"{name}: no content")
    sections = _sections(html_blocks(root))
    if not any(s.blocks for s in sections):
        raise SkipFile(f"{name}: no visible text")
    if not title:
        title = next((s.headings[-1] for s in sections if s.headings), file.path.rsplit("/", 1)[-1])
    permalink = meta.get("permalink") if isinstance(meta.get("permalink"), str) else None
    return Page(source=source.name, path=file.path, url=page_url(source, file.path, permalink),
                title=title, sections=sections)


def _block_key(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


_CANONICAL_NAMES = ("index.md", "readme.md", "index.html")


def remove_boilerplate(pages: list[Page], min_pages: int) -> list[Page]:
    """Blocks found on `min_pages` or more pages are site furniture (intro, link tables, post
    lists): each is kept once, on the home page if it has it, else on the first page that does.
    A title that several pages share (the site name in every page's front matter) names no page:
    such pages get their first top-level heading of their own as title instead."""
    where: dict[str, list[int]] = defaultdict(list)
    for i, page in enumerate(pages):
        for key in {_block_key(b) for s in page.sections for b in s.blocks}:
            where[key].append(i)

    def rank(i: int) -> tuple[int, int]:
        return (0 if pages[i].path.lower() in _CANONICAL_NAMES else 1, i)

    keeper = {key: min(idx, key=rank) for key, idx in where.items() if len(idx) >= min_pages}
    title_count: dict[str, int] = defaultdict(int)
    heading_count: dict[str, int] = defaultdict(int)
    for page in pages:
        title_count[page.title] += 1
        for text in {s.headings[-1] for s in page.sections if s.headings}:
            heading_count[text] += 1

    cleaned = []
    for i, page in enumerate(pages):
        sections = []
        for s in page.sections:
            blocks = [b for b in s.blocks if keeper.get(_block_key(b), i) == i]
            if blocks:
                sections.append(dataclasses.replace(s, blocks=blocks))
        title = page.title
        if title_count[title] >= 2:
            own = [s for s in page.sections if s.headings and heading_count[s.headings[-1]] < min_pages]
            if own:  # the page's first top-level heading of its own
                title = min(own, key=lambda s: s.level).headings[-1]
        if sections:
            cleaned.append(dataclasses.replace(page, title=title, sections=sections))
    return cleaned


def read_pages(sources: Iterable[tuple[Source, list[SourceFile]]], min_pages: int,
               warn: Callable[[str], None]) -> list[Page]:
    """Parse every file, warn about (and skip) the unreadable ones, then drop boilerplate."""
    pages = []
    for source, files in sources:
        for f in files:
            try:
                pages.append(parse_page(source, f, f.abs_path.read_bytes()))
            except SkipFile as exc:
                warn(f"skipped {exc}")
            except OSError as exc:
                warn(f"skipped {source.name}/{f.path}: cannot read: {exc}")
    return remove_boilerplate(pages, min_pages)
