"""Turn search hits into what a person reads: short passages trimmed to the sentences that answer,
numbered citations to the page and section, or an honest "the portal does not cover this" with
the closest pages. Nothing here is generated: every sentence shown is quoted from a page.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

from .retrieve import Hit, SearchResult, Searcher, check_question
from .textproc import normalize_query, split_sentences

SNIPPET_CHARS = 220
MAX_CITATIONS = 3
# A passage after the first is cited only if its cosine similarity is within this distance of
# the best one's: e5 scores sit in a narrow band, and on the portal a gap over 0.02 separated the
# passages that answer from neighbours on other topics. Weaker hits stay in `faq-bot search`.
CITE_MAX_DENSE_GAP = 0.02


@dataclass
class Citation:
    n: int
    title: str
    section: str
    url: str
    snippet: str


@dataclass
class Answer:
    question: str
    answerable: bool
    citations: list[Citation]            # the passages that answer, numbered [1], [2] ...
    suggestions: list[Citation] = field(default_factory=list)   # closest pages when not answerable
    search_query: str = ""               # what was searched (includes the previous turn for follow-ups)

    def to_dict(self) -> dict:
        return {"question": self.question, "answerable": self.answerable,
                "answer_markdown": self.to_markdown(),
                "citations": [asdict(c) for c in self.citations],
                "suggestions": [asdict(c) for c in self.suggestions]}

    def to_markdown(self) -> str:
        """Markdown in which every piece of page or question text is escaped: safe to render."""
        if self.answerable:
            body = [f"{escape_markdown(c.snippet)} [{c.n}]" for c in self.citations]
            sources = [f"[{c.n}] [{escape_markdown(_label(c))}]({_safe_url(c.url)})" for c in self.citations]
            return "\n\n".join(body) + "\n\n**來源 Sources**\n\n" + "\n\n".join(sources)
        text = "入口網站的頁面沒有回答這個問題。(The portal does not cover this question.)"
        if self.suggestions:
            closest = [f"- [{escape_markdown(_label(c))}]({_safe_url(c.url)})" for c in self.suggestions]
            text += "\n\n最接近的頁面 Closest pages:\n\n" + "\n".join(closest)
        return text

    def to_text(self) -> str:
        """Plain text for a terminal."""
        if self.answerable:
            lines = [f"{c.snippet} [{c.n}]" for c in self.citations]
            lines.append("")
            lines += [f"[{c.n}] {_label(c)}\n    {c.url}" for c in self.citations]
            return "\n".join(lines)
        lines = ["Not found in the portal: no page answers this question. (入口網站沒有回答這個問題。)"]
        if self.suggestions:
            lines.append("Closest pages:")
            lines += [f"  - {_label(c)}\n    {c.url}" for c in self.suggestions]
        return "\n".join(lines)


def _label(c: Citation) -> str:
    return f"{c.title} › {c.section}" if c.section else c.title


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown and HTML characters so text shows as written, never as markup."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _safe_url(url: str) -> str:
    """A link target that cannot break out of Markdown's (...) or run script."""
    if not url.startswith(("https://", "http://")):
        return "#"
    return url.replace("(", "%28").replace(")", "%29").replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")


# ---------------------------------------------------------------- trimming

def trim_to_sentences(text: str, words: Sequence[str], weights: dict[str, float], limit: int = SNIPPET_CHARS) -> str:
    """The sentences of `text` that share the most (IDF-weighted) question words, with their
    neighbours, in page order, within `limit` characters."""
    sentences = split_sentences(text)
    if not sentences:
        return text[:limit]
    lowered = [s.lower() for s in sentences]
    scores = [sum(weights.get(w, 1.0) for w in set(words) if w in s) for s in lowered]
    best = max(range(len(sentences)), key=lambda i: (scores[i], -i))
    if scores[best] == 0:
        best = 0
    chosen = {best}
    length = len(sentences[best])
    # grow around the best sentence, preferring the better-scoring neighbour
    lo, hi = best - 1, best + 1
    while lo >= 0 or hi < len(sentences):
        options = [i for i in (lo, hi) if 0 <= i < len(sentences)]
        pick = max(options, key=lambda i: (scores[i], -abs(i - best), i == hi))
        if length + len(sentences[pick]) + 1 > limit:
            break
        chosen.add(pick)
        length += len(sentences[pick]) + 1
        if pick == lo:
            lo -= 1
        else:
            hi += 1
    parts = [sentences[i] for i in sorted(chosen)]
    snippet = " ".join(parts)
    if len(snippet) > limit:
        snippet = snippet[:limit - 1].rstrip() + "…"
    prefix = "…" if min(chosen) > 0 else ""
    suffix = "…" if max(chosen) < len(sentences) - 1 and not snippet.endswith("…") else ""
    return prefix + snippet + suffix


# ---------------------------------------------------------------- follow-ups

# A question that leans on the previous one: opens with a pronoun or "and/what about", or is a
# short question ending in 呢 ("RTF 呢？").
_FOLLOW_UP = re.compile(r"^(那|它|這|其|還有|另外|and\b|what about|how about|its?\b|they\b|them\b|then\b)", re.I)
_SHORT_NE = re.compile(r"^.{1,12}呢[?？]?$")


def previous_questions(history: Iterable | None) -> list[str]:
    """The visitor's earlier questions from a chat history: a list of strings, of
    {"role", "content"} messages, or of [question, answer] pairs."""
    out: list[str] = []
    for item in history or []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and item.get("role") == "user" and isinstance(item.get("content"), str):
            out.append(item["content"])
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            out.append(item[0])
    return [q for q in out if q.strip()]


def contextual_query(question: str, history: Iterable | None) -> str:
    """A follow-up ("那它的 RTF 呢？") is searched together with the previous question, so the
    thing it refers to is found; a question that stands alone is searched as is."""
    earlier = previous_questions(history)
    if not earlier:
        return question
    q = normalize_query(question).strip()
    if _FOLLOW_UP.search(q) or _SHORT_NE.match(q):
        return f"{earlier[-1]} {question}"
    return question


# ---------------------------------------------------------------- answering

def build_answer(question: str, result: SearchResult, searcher: Searcher) -> Answer:
    words = searcher.cutter.tokens(result.query)
    weights = searcher.word_weights(words)
    if result.answerable:
        cites = [_citation(n, hit, words, weights) for n, hit in enumerate(citable(result.hits), 1)]
        return Answer(question=question, answerable=True, citations=cites, search_query=result.question)
    seen, suggestions = set(), []
    for hit in result.hits:
        if hit.chunk.page_id in seen:
            continue
        seen.add(hit.chunk.page_id)
        suggestions.append(_citation(len(suggestions) + 1, hit, words, weights))
        if len(suggestions) == MAX_CITATIONS:
            break
    return Answer(question=question, answerable=False, citations=[], suggestions=suggestions,
                  search_query=result.question)


def citable(hits: list[Hit]) -> list[Hit]:
    """The first hit, and the next ones (up to MAX_CITATIONS) that are about as close in meaning;
    a hit found by BM25 alone is cited if it matches the words at least as well as the first."""
    top = hits[:MAX_CITATIONS]
    dense = [h.dense_score for h in top if not math.isnan(h.dense_score)]
    best = max(dense, default=math.nan)
    chosen = top[:1]
    for hit in top[1:]:
        if math.isnan(hit.dense_score):
            close = hit.bm25_score >= top[0].bm25_score > 0
        else:
            close = hit.dense_score >= best - CITE_MAX_DENSE_GAP
        if close:
            chosen.append(hit)
    return chosen


def _citation(n: int, hit: Hit, words: list[str], weights: dict[str, float]) -> Citation:
    c = hit.chunk
    return Citation(n=n, title=c.title, section=c.section, url=c.link,
                    snippet=trim_to_sentences(c.text, words, weights))


def answer(searcher: Searcher, question: str, history: Iterable | None = None, k: int = 10) -> Answer:
    """Answer a question (with the chat so far, for follow-ups). Raises QuestionError for bad input."""
    text = check_question(question, searcher.settings.max_question_chars)
    query = contextual_query(text, history)
    if len(query) > searcher.settings.max_question_chars:
        query = text
    return build_answer(text, searcher.search(query, k=k), searcher)
