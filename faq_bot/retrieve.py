"""Find the passages that answer a question, or decide that none does.

normalise (NFKC, Simplified -> Traditional) -> dense (FAISS) and BM25 (jieba words) candidates
-> reciprocal rank fusion -> at most N hits per page -> abstention decision.

e5 cosine similarities sit in a narrow band (0.80-0.94 here) for relevant and irrelevant text
alike, so "nothing relevant" is decided from several signals (see `decide_answerable`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .chunk import Chunk
from .config import Config, Settings
from .embed import Embedder, make_embedder
from .index import IndexLoadError, LoadedIndex, load_index
from .textproc import STOPWORDS, clean_text, normalize_query, word_cutter


class QuestionError(ValueError):
    """The question cannot be searched as given; the message says why (shown to the user)."""


class QuestionTooLong(QuestionError):
    """Over settings.max_question_chars."""


def check_question(question: object, max_chars: int) -> str:
    """A clean question or QuestionError: not text, empty, or longer than `max_chars`.
    Control characters are removed rather than refused: they come from copy and paste."""
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    text = clean_text(question)
    if not text:
        raise QuestionError("the question is empty: type a question about Deep Learning 101's pages")
    if len(text) > max_chars:
        raise QuestionTooLong(f"the question is {len(text)} characters long; the limit is {max_chars}. "
                            "Ask about one thing at a time.")
    return text


@dataclass
class Hit:
    chunk: Chunk
    score: float                 # fused (RRF) score
    dense_score: float           # cosine similarity, or nan if not a dense candidate
    bm25_score: float            # BM25 score, 0 if no query word matched
    dense_rank: int | None       # 1-based rank among dense candidates
    bm25_rank: int | None

    def to_dict(self, max_text: int | None = None) -> dict:
        c = self.chunk
        return {"source": c.source, "path": c.path, "url": c.link, "title": c.title,
                "section": c.section, "text": c.text if max_text is None else c.text[:max_text],
                "score": round(float(self.score), 6)}


@dataclass
class Signals:
    """What the abstention decision looks at, kept for calibration and debugging."""

    dense_top: float = 0.0       # best cosine similarity of any chunk
    coverage: float = 0.0        # share of the question's key words (IDF-weighted) in the best hit
    missing_names: list[str] = field(default_factory=list)   # names (Airflow, Ray Tune) no page contains
    latin: bool = False          # the question is written mostly in Latin script (English)
    bm25_top: float = 0.0


@dataclass
class SearchResult:
    question: str                # as asked
    query: str                   # after normalisation
    answerable: bool
    hits: list[Hit]
    signals: Signals
    reason: str = ""             # why it abstained, in plain words

    def to_dict(self) -> dict:
        return {"question": self.question, "answerable": self.answerable,
                "hits": [h.to_dict() for h in self.hits]}


_LATIN_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9+#.\-']*(?:[ \t]*&?[ \t]*[A-Za-z0-9][A-Za-z0-9+#.\-']*)*")
_LATIN_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9+#.\-']*")


def _match_key(text: str) -> str:
    return re.sub(r"\s+", "", text.lower())


def _name_key(text: str) -> str:
    """Letters and digits only, lower case: "Weights & Biases" -> "weightsbiases", GPT-4 -> gpt4."""
    return re.sub(r"[\W_]+", "", text.lower())


def is_latin(text: str) -> bool:
    """Mostly English: fewer than half as many CJK characters as Latin letters."""
    cjk = sum("\u3400" <= ch <= "\u9fff" for ch in text)
    letters = sum(ch.isascii() and ch.isalpha() for ch in text)
    return cjk * 2 < letters


def name_phrases(question: str) -> list[str]:
    """Product and tool names in a question, as adjacent word pairs (or single words): the Latin
    words of a Chinese question; the capitalised words of an English one (minus stopwords)."""
    latin = is_latin(question)
    phrases: list[str] = []
    for run in _LATIN_RUN.finditer(question):
        groups: list[list[str]] = [[]]
        for word in _LATIN_TOKEN.findall(run.group()):
            is_name = word.lower() not in STOPWORDS and (not latin or any(ch.isupper() for ch in word))
            if is_name:
                groups[-1].append(word)
            elif groups[-1]:
                groups.append([])
        for group in groups:
            if not any(not w.isdigit() for w in group):
                continue
            if len(group) == 1:
                if len(group[0]) >= 3:
                    phrases.append(group[0])
            else:
                phrases += [f"{a} {b}" for a, b in zip(group, group[1:])]
    return phrases


class Searcher:
    """Searches one loaded index with the embedder that built it."""

    def __init__(self, index: LoadedIndex, embedder: Embedder, settings: Settings) -> None:
        if (embedder.backend, embedder.model, embedder.dim) != (index.manifest.backend, index.manifest.model, index.manifest.dim):
            raise ValueError(f"index built with {index.manifest.backend}:{index.manifest.model} "
                             f"({index.manifest.dim}-d), embedder is {embedder.backend}:{embedder.model} ({embedder.dim}-d)")
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.cutter = word_cutter()
        self._keys = {c.id: _match_key(c.embed_text()) for c in index.chunks}
        self._all_names = "\n".join(_name_key(c.embed_text()) for c in index.chunks)
        vocab = index.bm25.vocab_dict
        self._vocab = vocab
        # document frequency of each vocabulary word, for IDF weights of question words
        n_docs = max(len(index.chunks), 1)
        df = np.diff(index.bm25.scores["indptr"]) if "indptr" in index.bm25.scores else None
        self._idf = {}
        if df is not None:
            for word, wid in vocab.items():
                if wid < len(df):
                    self._idf[word] = math.log(1 + (n_docs - df[wid] + 0.5) / (df[wid] + 0.5))
        self._max_idf = math.log(1 + (n_docs + 0.5) / 0.5)

    @classmethod
    def open(cls, config: Config, embedder: Embedder | None = None) -> "Searcher":
        """Load the configured index and its embedder. An index built with another model than the
        configured one is refused: its vectors are not comparable with the model's queries."""
        settings = config.settings
        index = load_index(Path(settings.index_dir))
        built = (index.manifest.backend, index.manifest.model)
        if built != (settings.embed_backend, settings.embed_model):
            raise IndexLoadError(
                f"the index in {settings.index_dir} was built with {built[0]}:{built[1]} but the config asks "
                f"for {settings.embed_backend}:{settings.embed_model}; run `faq-bot ingest` to rebuild it")
        if embedder is None:
            embedder = make_embedder(*built)
        return cls(index, embedder, settings)

    def word_weights(self, words: list[str]) -> dict[str, float]:
        """IDF of each word over the chunks (rare words say more); unseen words weigh the most."""
        return {w: self._idf.get(w, self._max_idf) for w in words}

    # ------------------------------------------------------------------ candidates
    def _dense(self, query: str, n: int) -> list[tuple[int, float]]:
        vector = self.embedder.embed_queries([query])
        scores, ids = self.index.dense.search(vector, min(n, self.index.dense.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def _bm25(self, words: list[str], n: int) -> list[tuple[int, float]]:
        ids = [self._vocab[w] for w in dict.fromkeys(words) if w in self._vocab]
        if not ids:
            return []
        scores = self.index.bm25.get_scores(ids)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    # ------------------------------------------------------------------ search
    def search(self, question: str, k: int = 10) -> SearchResult:
        text = check_question(question, self.settings.max_question_chars)
        query = normalize_query(text)
        words = self.cutter.tokens(query)
        n = max(self.settings.candidates, k)
        dense = self._dense(query, n)
        bm25 = self._bm25(words, n)

        fused: dict[int, float] = {}
        dense_rank = {i: r for r, (i, _) in enumerate(dense, 1)}
        bm25_rank = {i: r for r, (i, _) in enumerate(bm25, 1)}
        for ranks in (dense_rank, bm25_rank):
            for i, r in ranks.items():
                fused[i] = fused.get(i, 0.0) + 1.0 / (self.settings.rrf_k + r)
        dense_score = dict(dense)
        bm25_score = dict(bm25)
        order = sorted(fused, key=lambda i: (-fused[i], i))
        hits = [Hit(self.index.chunks[i], fused[i], dense_score.get(i, math.nan), bm25_score.get(i, 0.0),
                    dense_rank.get(i), bm25_rank.get(i)) for i in order]
        hits = diversify(hits, self.settings.max_hits_per_page, k)

        signals = self._signals(text, words, dense, bm25, hits)
        answerable, reason = decide_answerable(signals, self.settings)
        return SearchResult(question=question, query=query, answerable=answerable, hits=hits,
                            signals=signals, reason=reason)

    def _signals(self, question: str, words: list[str], dense, bm25, hits: list[Hit]) -> Signals:
        key_words = [w for w in dict.fromkeys(words) if len(w) > 1 or not w.isascii()]
        signals = Signals(dense_top=dense[0][1] if dense else 0.0, bm25_top=bm25[0][1] if bm25 else 0.0,
                          latin=is_latin(question))
        signals.missing_names = [p for p in name_phrases(question) if _name_key(p) not in self._all_names]
        if key_words and hits:
            weights = self.word_weights(key_words)
            total = sum(weights.values())
            best = 0.0
            for hit in hits[:3]:
                key = self._keys[hit.chunk.id]
                found = sum(weights[w] for w in key_words if w in key)
                best = max(best, found / total if total else 0.0)
            signals.coverage = best
        return signals


def _bigrams(text: str) -> set[str]:
    """Character pairs of a passage's opening: enough to tell a passage published twice (as HTML
    and as Markdown) from a different one, and cheap enough to compute per search."""
    key = re.sub(r"\s+", "", text[:200].lower())[:160]
    return {key[i:i + 2] for i in range(len(key) - 1)}


def diversify(hits: list[Hit], per_page: int, k: int, duplicate_overlap: float = 0.7) -> list[Hit]:
    """The top k, led by hits that add something: at most `per_page` from one page, and none that
    repeats a passage already listed (the portal has pages published twice, as HTML and Markdown).
    Passed-over hits fill the remaining places, in their order."""
    count: dict[str, int] = {}
    first: list[Hit] = []
    kept_grams: list[set[str]] = []
    rest: list[Hit] = []
    for hit in hits:
        if len(first) == k:
            break
        page = hit.chunk.page_id
        grams = _bigrams(hit.chunk.text)
        duplicate = any(len(grams & g) >= duplicate_overlap * min(len(grams), len(g)) for g in kept_grams if g)
        if duplicate or count.get(page, 0) >= per_page:
            rest.append(hit)
            continue
        count[page] = count.get(page, 0) + 1
        kept_grams.append(grams)
        first.append(hit)
    return (first + rest)[:k]


def decide_answerable(signals: Signals, settings: Settings) -> tuple[bool, str]:
    """Answer when the best passage is close in meaning and shares enough of the question's key
    words (fewer for English questions: the pages are Chinese), or is very close in meaning alone.
    A name that no page contains at all (a tool like "Airflow", "Ray Tune") means the portal does
    not cover the question, however close the rest is."""
    if signals.missing_names:
        return False, f"no page mentions {', '.join(signals.missing_names)}"
    if signals.dense_top >= settings.abstain_strong_dense:
        return True, ""
    min_coverage = settings.abstain_min_coverage_latin if signals.latin else settings.abstain_min_coverage
    if signals.dense_top >= settings.abstain_min_dense and signals.coverage >= min_coverage:
        return True, ""
    return False, "no passage is close enough to the question"
