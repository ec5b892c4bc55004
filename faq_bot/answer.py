"""Turn the policy's decision into what a person reads: short passages built around the sentences
that answer, numbered citations to the page and section (with a text fragment that highlights the
quoted sentence), or an honest "the portal does not cover this" with the closest pages. Nothing here
is generated: every sentence shown is quoted from a page.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Iterable
from urllib.parse import quote

from .policy import QUESTION_SENTENCES, Decision, ScoredSentence, decide, load_calibration
from .retrieve import CONTEXT_UNITS, Hit, SearchResult, Searcher, check_question
from .smalltalk import small_talk, without_courtesy
from .textproc import (Statement, clean_text, is_latin, leads_on, match_key, normalize, reading_length,
                       says_the_same, split_sentences, statement, without_citation_marks)

# A quoted passage: the answering sentence and its neighbours, within this many characters. Three
# of them fit the widget's panel without scrolling on a laptop.
SNIPPET_CHARS = 220
# The first quote may be a whole passage (chunks are at most 400 characters): on dev.yaml the answer
# was often two or three sentences after the one that matched the question best, beyond 220
# characters (bench/calibrate.py, held-out answer@evidence).
LEAD_SNIPPET_CHARS = 400
MAX_CITATIONS = 3
SMALL_TALK = "small_talk"       # Answer.mode of a reply to small talk


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
    # "generated": `text` was written from the citations (generate.py); "small_talk": the message was
    # a greeting, thanks or "who are you" (smalltalk.py), `text` is the reply, and nothing was searched
    mode: str = "extractive"
    text: str = ""                       # the written answer, every sentence checked, with [n] citations
    note: str = ""                       # one line for the visitor (e.g. why there is no written answer)
    result: SearchResult | None = field(default=None, repr=False, compare=False)   # for eval and search
    decision: Decision | None = field(default=None, repr=False, compare=False)
    generation: object | None = field(default=None, repr=False, compare=False)   # generate.Generation
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)   # to_json(), once

    @property
    def hits(self) -> list[Hit]:
        """The search's ranked passages (none for small talk, which is not searched)."""
        return self.result.hits if self.result is not None else []

    def shown_text(self) -> str:
        """What the visitor reads of the answer: the written text (if any) and the quoted passages
        (empty for an abstention)."""
        if not self.answerable:
            return ""
        return "\n".join([self.text] * bool(self.text) + [c.snippet for c in self.citations])

    def to_dict(self) -> dict:
        return {"question": self.question, "answerable": self.answerable, "mode": self.mode,
                "text": self.text, "note": self.note,
                "answer_markdown": self.to_markdown(),
                "citations": [asdict(c) for c in self.citations],
                "suggestions": [asdict(c) for c in self.suggestions]}

    def to_json(self) -> bytes:
        """`to_dict()` as compact UTF-8 JSON (as a JSON response renders it), made once: an answer
        served from memory is sent again and again, and making its dict and JSON each time was a
        fifth of the CPU of such a request (an answer is not changed once made: a variant is a
        `dataclasses.replace` copy, which starts without it)."""
        if self._json is None:
            self._json = json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False,
                                    separators=(",", ":")).encode("utf-8")
        return self._json

    def to_markdown(self) -> str:
        """Markdown in which every piece of page or question text is escaped: safe to render."""
        note = f"*{escape_markdown(self.note)}*\n\n" if self.note else ""
        if self.mode == SMALL_TALK:
            return escape_markdown(self.text)
        if self.answerable and self.text:      # the written answer, then the passages it rests on
            quotes = [f"> {escape_markdown(c.snippet)} [{c.n}]" for c in self.citations]
            sources = [f"[{c.n}] [{escape_markdown(_label(c))}]({_safe_url(c.url)})" for c in self.citations]
            return (note + escape_markdown(self.text) + "\n\n**引用段落 Passages**\n\n" + "\n\n".join(quotes)
                    + "\n\n**來源 Sources**\n\n" + "\n\n".join(sources))
        if self.answerable:
            body = [f"{escape_markdown(c.snippet)} [{c.n}]" for c in self.citations]
            sources = [f"[{c.n}] [{escape_markdown(_label(c))}]({_safe_url(c.url)})" for c in self.citations]
            return note + "\n\n".join(body) + "\n\n**來源 Sources**\n\n" + "\n\n".join(sources)
        text = "入口網站的頁面沒有回答這個問題。(The portal does not cover this question.)"
        if self.suggestions:
            closest = [f"- [{escape_markdown(_label(c))}]({_safe_url(c.url)})" for c in self.suggestions]
            text += "\n\n最接近的頁面 Closest pages:\n\n" + "\n".join(closest)
        return text

    def to_text(self) -> str:
        """Plain text for a terminal."""
        if self.mode == SMALL_TALK:
            return self.text
        if self.answerable:
            lines = [self.note, ""] if self.note else []
            if self.text:
                lines += [self.text, "", "Passages:"]
            lines += [f"{c.snippet} [{c.n}]" for c in self.citations]
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


# Characters that make Markdown or HTML anywhere in a line: emphasis, code, links, raw HTML,
# entities, strikethrough. Others are markup only where a line starts (headings, quotes, lists), so
# they are escaped there alone: "RTF 是 0.08" and "GPT-4" stay as the page writes them in the
# Markdown that API clients read and compare, instead of "0\.08" and "GPT\-4".
_MD_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>~&])")
_MD_LINE_START = re.compile(r"^([ \t]*)([#>+\-=]|\d+(?=[.)]))", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """Backslash-escape what would be Markdown or HTML so text shows as written, never as markup:
    inline marks everywhere, block marks (# > - + = and "1." / "1)") at the start of a line."""
    text = _MD_INLINE_SPECIAL.sub(r"\\\1", text)

    def block(match: re.Match) -> str:
        mark = match.group(2)
        return match.group(1) + (mark + "\\" if mark[0].isdigit() else "\\" + mark)

    return _MD_LINE_START.sub(block, text)


def _safe_url(url: str) -> str:
    """A link target that cannot break out of Markdown's (...) or run script."""
    if not url.startswith(("https://", "http://")):
        return "#"
    return url.replace("(", "%28").replace(")", "%29").replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")


# ---------------------------------------------------------------- passages

def passage_around(sentences: list[str], center: int, limit: int = SNIPPET_CHARS) -> str:
    """Sentence `center` with its neighbours, the next one first (an answer often follows the
    sentence that names the topic), in page order, within `limit` characters."""
    chosen = {center}
    length = len(sentences[center])
    lo, hi = center - 1, center + 1
    while lo >= 0 or hi < len(sentences):
        pick = hi if hi < len(sentences) and (lo < 0 or hi - center <= center - lo) else lo
        if length + len(sentences[pick]) + 1 > limit:
            break
        chosen.add(pick)
        length += len(sentences[pick]) + 1
        if pick == hi:
            hi += 1
        else:
            lo -= 1
    return _shown(sentences, sorted(chosen), limit)


# A page's question, or a line that leads in to what follows (「有效調整學習率的方法包括：」), is shown
# only with the sentences after it, up to this many: the rest of a page's question, which is asked in
# at most policy.QUESTION_SENTENCES sentences, and its answer. Filling a snippet with one alone left
# the visitor at 「Q: AdaGrad 算法的一個主要缺點是什麼？」 with its answer cut off: 187 of the 1,917 citations of the replies to the 862
# labelled questions (the 562 and the check sets outside the fit) ended on a question or a lead-in,
# 21 now (those whose quote itself leads on to the next passage). Held out (562 questions, 8 fold
# draws): answer@evidence 0.827 -> 0.829, higher in each draw (Simplified 0.884 -> 0.907); the
# check sets outside the fit the same.
LEAD_ON_SENTENCES = QUESTION_SENTENCES


def passage_snippet(sentences: list[str], center: int, preferred: Iterable[int], limit: int = SNIPPET_CHARS) -> str:
    """Sentence `center` (the quote) and, as many as fit within `limit` characters, the passage's
    other sentences in `preferred` order (best first: the quote model's ranking), shown in page
    order with "…" where sentences were left out. The answer is often the passage's second-best
    sentence, not the quote's neighbour: held out (222 questions, 5 folds, 8 draws), filling the
    same 220 / 400 characters this way instead of with the quote's neighbours (`passage_around`)
    took answer@evidence from 0.800 to 0.811 (follow-ups 0.758 -> 0.793, Simplified 0.875 -> 0.928,
    English 0.885 -> 0.872); filling with the next sentence first, then by rank: 0.807. A sentence
    that leads on (`leads_on`) comes with the sentences it leads to, or not at all."""
    def unit(i: int) -> list[int] | None:      # the sentence with what it leads on to, if the passage holds it
        group = [i]
        while leads_on(sentences[group[-1]]) and len(group) <= LEAD_ON_SENTENCES:
            if group[-1] + 1 >= len(sentences):
                return None
            group.append(group[-1] + 1)
        return group

    chosen = [center]
    length = len(sentences[center])
    follows = unit(center) or [center]       # a quote that leads on is shown with what follows it first
    for i in [*follows[1:], *preferred]:
        group = unit(i) if 0 <= i < len(sentences) and i not in chosen else None
        if group is None:
            continue
        group = [j for j in group if j not in chosen]
        added = sum(len(sentences[j]) + 1 for j in group)
        if length + added <= limit:
            chosen += group
            length += added
    return _shown(sentences, sorted(chosen), limit)


def _shown(sentences: list[str], chosen: list[int], limit: int) -> str:
    """Sentences `chosen` (indexes in page order) as a visitor reads them: "…" where sentences
    were left out before, between or after them, cut at `limit` characters. (An empty sentence,
    one that was only a source mark, is nothing left out.)"""
    def left_out(lo: int, hi: int) -> bool:
        return any(sentences[lo:hi])

    parts: list[str] = []
    for before, i in zip([None, *chosen], chosen):
        if before is not None and left_out(before + 1, i):
            parts.append("…")
        if sentences[i]:
            parts.append(sentences[i])
    snippet = " ".join(parts)
    if len(snippet) > limit:
        snippet = snippet[:limit - 1].rstrip() + "…"
    prefix = "…" if left_out(0, chosen[0]) else ""
    suffix = "…" if left_out(chosen[-1] + 1, len(sentences)) and not snippet.endswith("…") else ""
    return prefix + snippet + suffix


_CLAUSE = re.compile(r"[，、：；,;:]")
# a browser matches the rendered page: Markdown links and emphasis marks are not in it
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_INLINE = re.compile(r"\*\*|__|`")
_END_MARKS = "。！？；.!?;…"


def text_fragment(sentence: str) -> str:
    """A `:~:text=` directive that makes a browser scroll to and highlight the sentence. A long
    sentence is given as its first and last clause (textStart,textEnd), cut where a clause ends,
    so both ends fall on word boundaries in Chinese text too."""
    text = _MD_INLINE.sub("", _MD_LINK.sub(r"\1", sentence)).strip().rstrip(_END_MARKS).strip()
    if not text:
        return ""

    def enc(part: str) -> str:
        return quote(part.strip(), safe="").replace("-", "%2D")

    clauses = [c for c in _CLAUSE.split(text) if c.strip()]
    if len(text) > 80 and len(clauses) >= 2:
        return f":~:text={enc(clauses[0])},{enc(clauses[-1])}"
    return f":~:text={enc(text)}"


def cited_url(hit: Hit, sentence: str) -> str:
    fragment = text_fragment(sentence)
    link = hit.chunk.link
    if not fragment:
        return link
    if ":~:" in link:     # the section's own anchor is already a text fragment (an HTML heading without id)
        return link + "&" + fragment[len(":~:"):]
    return link + fragment if "#" in link else link + "#" + fragment


# ---------------------------------------------------------------- follow-ups

# A question that leans on the previous one: opens with a pronoun, "and/what about/then/if", ends
# in 呢 ("RTF 呢？"), or is short: in a chat a short question nearly always continues the last one.
_FOLLOW_UP = re.compile(r"^(那|它|他|她|這|其|還有|另外|後來|然後|如果|若|再|裡面|上面|前面提到|剛剛|剛才|"
                        r"and\b|what about|how about|its?\b|"
                        r"they\b|them\b|then\b|if\b|and if\b|what if\b)", re.I)
_ENDS_NE = re.compile(r"呢[?？]?$")
# A question of at most this many letters and digits is read as continuing the previous one:
# "後來改用什麼模型？" (8) names no topic of its own, while a question that does ("LSTM 裡面有哪幾
# 個門？", 10) still finds its topic when the previous turn is searched with it at a lower weight.
SHORT_FOLLOW_UP_CHARS = 12
# A follow-up of a follow-up ("它可以用在離散資料上嗎？" → "那離散資料要改用什麼方法？") is searched
# with the turns back to the one that names the topic, at most this many, when the later turns
# point back in words (a pronoun, 那, 呢: a short turn alone may well name its topic, 「語音去噪模型
# 多大？」) and all of them fit in what a follow-up's context may add (retrieve.CONTEXT_UNITS).
MAX_CONTEXT_TURNS = 3


def previous_questions(history: Iterable | None) -> list[str]:
    """The visitor's earlier questions from a chat history: a list of strings, of
    {"role", "content"} messages, or of [question, answer] pairs."""
    if isinstance(history, str):        # one earlier question, not a list of its characters
        history = [history]
    out: list[str] = []
    for item in history or []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and item.get("role") == "user" and isinstance(item.get("content"), str):
            out.append(item["content"])
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            out.append(item[0])
    # a greeting or a thanks is no topic a later question can lean on, nor is the courtesy around one
    return [without_courtesy(q) for q in out if q.strip() and small_talk(q) is None]


# An English question points back with a possessive or object pronoun anywhere, not only first as a
# Chinese one does (「它…」): "What are its main weaknesses at the moment?". Of the 38 labelled
# follow-ups, 5 English ones were read as standing alone; held out (282 questions, 8 draws), all
# 0.842 / 0.021 / 0.917 -> 0.846 / 0.021 / 0.925 (follow-ups 0.836 -> 0.859). The 52 standalone
# English questions, each asked after the item before it in its file: 44 -> 45 hold the evidence.
_EN_PRONOUN = re.compile(r"\b([Ii]ts|[Tt]heir|[Tt]hem)\b")
# "it" and "they" point back too ("Which languages does it cover?", "Can it run on a CPU?", "Is
# there anything built on top of it that also gives you timestamps?"), unless "it" is the empty
# subject of "it takes", "it depends", "is it possible to", "is it worth learning" ("How long does
# it take to train a speech model?" stands alone); "IT" is an acronym. Two English follow-ups of
# check sets F and G, written blind, had been read as standing alone.
_EN_SUBJECT = re.compile(r"\b([Ii]t|[Tt]hey)\b")
_EMPTY_ADJECTIVES = ("possible|true|better|best|necessary|ok|okay|normal|hard|easy|common|safe|fine|wise|"
                     "reasonable|enough|legal|allowed|required|important|useful|difficult|worthwhile")
_EMPTY_IT = re.compile(
    r"\bit\s+(takes?|took|depends?|matters?|seems?|looks?\s+like)\b"
    rf"|\b(is|was|isn't|wasn't|would|will)\s+it\s+(be\s+|really\s+)?({_EMPTY_ADJECTIVES})\s+(to|that|if|whether)\b"
    rf"|\bit(\s+is|\s+was|'s)\s+(really\s+)?({_EMPTY_ADJECTIVES})\s+(to|that|if|whether)\b"
    r"|\b(is\s+it|it\s+is|it's)\s+(really\s+)?worth\s+\w+ing\b", re.I)


# Words that point back from inside a question (those that open one are in `_FOLLOW_UP`: 裡面提到的
# DCRNN…): 「現在的模型在上面分數都很高了，…」 (on it), "Did anyone … share first-hand experience
# building one?" (a verb's object "one": not "relative to the initial one"). A clause that opens with
# 那 does not: in 「…多了時間連結矩陣，那個矩陣…」, 「…不是主流，那它跟 Top-down…」 it points within
# the question. Of the 100 labelled follow-ups with a history, 4 had been read as standing alone and
# searched without the turn they lean on; 1 is now, and no labelled question that stands alone
# matches ("use one-sided differences" does not). Held out (562 questions, 8 fold draws):
# answer@evidence 0.829 -> 0.831, higher or equal in each draw (follow-ups 0.775 -> 0.790), false
# abstention 0.023 -> 0.024, abstention 0.843 -> 0.842; the check sets outside the fit (their
# conversations M and N among them) the same.
_POINTS_BACK_INSIDE = re.compile(r"在(?:上面|裡面|其中)|\b(?:build|building|built|make|making|train|training|use|"
                                 r"using|buy|buying|run|running|try|trying)\s+ones?\b(?![-\w])", re.I)


def _points_back(q: str) -> bool:
    if is_latin(q):
        q_ = q.replace("’", "'")
        if _EN_PRONOUN.search(q_) or _EN_SUBJECT.search(_EMPTY_IT.sub(" ", q_)):
            return True
    return bool(_FOLLOW_UP.search(q) or _POINTS_BACK_INSIDE.search(q) or _ENDS_NE.search(q))


def points_back(question: str) -> bool:
    """Whether a question's words refer to an earlier one (a pronoun, "and/what about", 呢)."""
    return _points_back(normalize(question).strip())


def leans_on_previous(question: str) -> bool:
    """Whether a question continues the one before it rather than asking on its own: it points
    back, or it is too short to name a topic of its own."""
    q = normalize(question).strip()
    return _points_back(q) or sum(ch.isalnum() for ch in q) <= SHORT_FOLLOW_UP_CHARS


def follow_up_context(question: str, history: Iterable | None) -> str | None:
    """The earlier questions this one leans on ("那它的 RTF 呢？"), oldest first: the previous one,
    and while the earliest taken points back in words, the one before it too, if all of them fit
    in retrieve.CONTEXT_UNITS (words or CJK characters) as the search cleans them
    (MAX_CONTEXT_TURNS at most; a turn asked twice in a row counts once). They are searched
    together with the question, so the thing it refers to is found; None for a question that
    stands alone."""
    earlier = previous_questions(history)
    if not earlier or not leans_on_previous(question):
        return None
    chain = [earlier[-1]]
    for before in reversed(earlier[:-1]):
        if len(chain) == MAX_CONTEXT_TURNS or not points_back(chain[0]):
            break
        if clean_text(before) == clean_text(chain[0]):
            continue
        if reading_length(clean_text(" ".join([before, *chain]))) > CONTEXT_UNITS:
            break
        chain.insert(0, before)
    return " ".join(chain)


# ---------------------------------------------------------------- answering

def build_answer(question: str, result: SearchResult, decision: Decision) -> Answer:
    """Quotes become numbered citations; quotes from one section of one page share a citation.
    The room a quote leaves (a passage shorter than its limit) goes to the next one, so the reply
    keeps its bound (400 + 220 + 220 characters) and a short lead passage no longer leaves the
    second and third quotes at 220. Held out (562 questions, 8 fold draws): answer@evidence 0.831 ->
    0.834, higher or equal in each draw (follow-ups 0.790 -> 0.801, paraphrases 0.777 -> 0.781);
    check sets outside the fit K 0.700 -> 0.720, L 0.800 -> 0.820, O 0.880 -> 0.900, the others the
    same. The replies to the 562 grow from 692 to 809 characters at the median, their longest the
    same (845)."""
    if decision.answerable:
        citations: list[Citation] = []
        where: dict[tuple[str, str], Citation] = {}
        shown: list[Statement] = []       # what every sentence shown so far says (textproc.statement)
        spare = 0        # what the quotes before left of their room: the reply's length is the bound
        for rank, quote_ in enumerate(decision.quotes[:MAX_CITATIONS]):
            hit = result.hits[quote_.hit_rank]
            limit = (LEAD_SNIPPET_CHARS if rank == 0 else SNIPPET_CHARS) + spare
            snippet = _snippet(hit, quote_, decision.ranked, limit, shown)
            spare = max(0, limit - len(snippet))
            key = (hit.chunk.page_id, hit.chunk.anchor)
            if key in where:
                cited = where[key]
                if match_key(snippet) not in match_key(cited.snippet):
                    cited.snippet = f"{cited.snippet} {snippet}"
                continue
            cited = Citation(n=len(citations) + 1, title=hit.chunk.title, section=hit.chunk.section,
                             url=cited_url(hit, quote_.text), snippet=snippet)
            where[key] = cited
            citations.append(cited)
        return Answer(question=question, answerable=True, citations=citations, search_query=result.question,
                      result=result, decision=decision)
    seen, suggestions = set(), []
    for hit in result.hits:
        if hit.chunk.page_id in seen:
            continue
        seen.add(hit.chunk.page_id)
        lead = next((q for q in decision.quotes if result.hits[q.hit_rank] is hit), None)
        snippet = _snippet(hit, lead, decision.ranked) if lead else passage_around(shown_sentences(hit), 0)
        suggestions.append(Citation(n=len(suggestions) + 1, title=hit.chunk.title, section=hit.chunk.section,
                                    url=hit.chunk.link, snippet=snippet))
        if len(suggestions) == MAX_CITATIONS:
            break
    return Answer(question=question, answerable=False, citations=[], suggestions=suggestions,
                  search_query=result.question, result=result, decision=decision)


def _snippet(hit: Hit, quote_: ScoredSentence, ranked: list[ScoredSentence], limit: int = SNIPPET_CHARS,
             shown: list[Statement] | None = None) -> str:
    """The quote with the passage's best other sentences; with its neighbours when the decision
    carries no ranking. (A navigation sentence never leads, but may follow a quote: leaving them
    out of the filling lost a keyword question whose answer is a link's title, 0.811 -> 0.805.)
    With `shown` (the `statement`s of the sentences earlier quotes show, added to here), a sentence
    that says what one of them says (textproc.says_the_same) does not fill this one: a talk's html
    page and its notes say the same, and 58 of the 452 replies to the 562 labelled questions showed
    some sentence twice; 37 do now (a quote that says what an earlier quote's filling said:
    policy.same_statement keeps quotes apart only from each other). Held out, answer@evidence the
    same in each of 8 fold draws."""
    sentences = shown_sentences(hit)
    center = min(quote_.index, len(sentences) - 1)
    preferred = [s.index for s in ranked if s.hit_rank == quote_.hit_rank]
    said = [statement(match_key(x)) for x in sentences] if shown is not None else []
    if said:
        preferred = [i for i in preferred if i == center or not (
            0 <= i < len(sentences) and any(says_the_same(said[i], earlier) for earlier in shown))]
    snippet = passage_snippet(sentences, center, preferred, limit) if preferred else passage_around(sentences, center, limit)
    if said:
        shown += [said[i] for i, x in enumerate(sentences) if x and x in snippet]
    return snippet


def shown_sentences(hit: Hit) -> list[str]:
    """A passage's sentences as a reply shows them: in `split_sentences` order (a quote's index
    holds), without their numbered source marks (textproc.CITATION_MARK)."""
    sentences = split_sentences(hit.chunk.text) or [hit.chunk.text]
    return [without_citation_marks(s).strip() for s in sentences]


def searched_question(question: str, history: Iterable | None = None) -> tuple[str, str | None]:
    """What is searched for a checked question: the question without the greetings and thanks
    around it (`smalltalk.without_courtesy`), and the earlier turns it leans on (`follow_up_context`)."""
    text = without_courtesy(question)
    return text, follow_up_context(text, history)


def answer(searcher: Searcher, question: str, history: Iterable | None = None, k: int = 10) -> Answer:
    """Answer a question (with the chat so far, for follow-ups). Raises QuestionError for bad input.
    Small talk (「你好」, "thanks", "who are you?") gets a reply in kind, with nothing searched."""
    text = check_question(question, searcher.settings.max_question_chars)
    searched, context = searched_question(text, history)
    # in a chat, 「怎麼用？」 after 「RAG 是什麼？」 asks how to use RAG: only thanks, goodbyes and the
    # like are small talk there
    talk = small_talk(text, in_conversation=context is not None)
    if talk is not None:
        return Answer(question=text, answerable=False, citations=[], mode=SMALL_TALK, text=talk.reply)
    result = searcher.search(searched, k=k, context=context)
    manifest = searcher.index.manifest
    calibration = load_calibration(manifest.backend, manifest.model)
    # small talk in other words (「你是机器人还是真人？」), for a message that stands alone
    talk = (searcher.small_talk.read(searched, result, calibration.small_talk, points_back(searched))
            if context is None else None)
    if talk is not None:
        return Answer(question=text, answerable=False, citations=[], mode=SMALL_TALK, text=talk.reply)
    decision = decide(result, calibration)
    return build_answer(text, result, decision)
