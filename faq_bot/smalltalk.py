"""Messages that are not questions about the portal, and the courtesy around those that are.

A chat visitor says 「你好」, "thanks", "who are you?" or just "ok". Searched as questions, these were
answered with whatever page happens to write the word: 「你好」, "hi" and "hello" quoted a code
example that synthesises 你好 (probability 0.91-0.95, far above the threshold), "thanks" a talk's
acknowledgements, 「好」 a heading 「好處:」, "test" a row of links. Such a message gets a reply in
kind instead (what the bot is and how to ask), with no search and no citation; for eval it is an
abstention. Only a message made wholly of such phrases is small talk: 「你好，請問 RAG 是什麼？」 is a
question.

The courtesy around a question is not part of what it asks. Left in, 「你好」 and "Hi" counted as a
concept no passage holds (coverage 1.0 -> 0.33 for 「你好，請問 RAG 是什麼？」) and 「謝謝！」 as a noun no
page writes, which refused 「謝謝！那 reranker 要用哪一個？」 though 「那 reranker 要用哪一個？」 is answered.
`without_courtesy` takes greetings and thanks off a question's start and end before it is searched.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from .textproc import has_pictographs, normalize, reading_length, word_cutter

# The phrases, by what the visitor means; matched on the whole message (or a whole part of it
# between punctuation), lower case, after `normalize` (so Simplified 谢谢 is 謝謝 here). Sentence
# particles and repeated marks around them are ignored (「你好啊～」, "hi!!").
_PHRASES: dict[str, tuple[str, ...]] = {
    "greeting": ("你好", "您好", "妳好", "大家好", "你們好", "哈囉", "哈嘍", "哈羅", "嗨", "嘿", "早安", "午安",
                 "晚安", "早", "早上好", "下午好", "晚上好", "你好嗎", "最近好嗎", "在嗎", "在不在", "有人在嗎", "安安",
                 "anyone there", "is anyone there",
                 "hi", "hello", "hey", "hiya", "howdy", "yo", "greetings", "good morning", "good afternoon",
                 "good evening", "hi there", "hello there", "hey there", "how are you", "how are you doing",
                 "how's it going", "what's up", "sup"),
    # a visitor trying the bot out: answered as a greeting, but no courtesy to take off a question
    "test": ("測試", "測試一下", "測試測試", "test", "testing", "test test", "123", "can you hear me"),
    "thanks": ("謝謝", "謝謝你", "謝謝您", "謝啦", "感謝", "感謝你", "感謝您", "多謝", "非常感謝", "太感謝了", "辛苦了",
               "很有幫助", "有幫助", "超有幫助", "幫大忙了", "that helps", "very helpful",
               # compliments, answered as thanks are
               "你好厲害", "好厲害", "太強了", "你好棒", "好可愛", "你好可愛", "you're awesome", "good bot", "great job",
               "thanks", "thank you", "thank you very much", "thank you so much", "thanks a lot",
               "many thanks", "thx", "ty", "cheers"),
    "farewell": ("再見", "掰掰", "拜拜", "掰", "下次見", "先這樣", "bye", "bye bye", "goodbye", "good bye",
                 "see you", "see ya", "good night"),
    "about": ("你是誰", "您是誰", "妳是誰", "你是什麼", "你是什麼東西", "你叫什麼", "你叫什麼名字", "你是機器人嗎",
              "你是真人嗎", "你是人類嗎", "你是ai嗎", "你是機器人還是真人", "你是人類還是ai", "你能做什麼", "你可以做什麼", "你可以幫我做什麼", "你會做什麼",
              "你會什麼", "你能幹嘛", "你可以幹嘛", "怎麼用", "要怎麼用", "我在跟誰聊天", "跟我聊天的是誰",
              "who am i talking to", "who am i chatting with",
              "如何使用", "使用說明", "幫助", "說明", "help", "who are you", "what are you", "what is this",
              "what's this", "what can you do", "what do you do", "how do i use this", "how does this work",
              "are you a bot", "are you a robot", "are you human", "are you a real person"),
    "acknowledgement": ("好", "好的", "好喔", "好吧", "嗯", "嗯嗯", "喔", "哦", "噢", "了解", "瞭解", "知道了", "收到",
                        "明白", "懂了", "沒問題", "讚", "太棒了", "不錯", "ok", "okay", "k", "got it", "i see",
                        "cool", "nice", "great", "awesome", "alright", "all right", "sure", "understood",
                        "哈哈", "呵呵", "嘻嘻", "笑死", "haha", "hehe", "lol", "lmao"),
}
_KIND_OF = {phrase: kind for kind, phrases in _PHRASES.items() for phrase in phrases}
# When a message mixes kinds (「謝謝，再見」, "hi, who are you?"), the reply answers the one that
# asks for most: what the bot is, then goodbye, thanks, hello, a plain "ok".
_PRIORITY = ("about", "farewell", "thanks", "greeting", "test", "acknowledgement")

REPLIES = {
    "greeting": "你好！我是 Deep Learning 101 的問答助理：請問入口網站談到的主題（語音、NLP、CV、LLM、RAG…），"
                "我會引用頁面的段落回答，並附上連結。Hello! Ask me about Deep Learning 101's pages; "
                "I answer with quoted passages and links to them.",
    "test": "收到！我是 Deep Learning 101 的問答助理：請問入口網站談到的主題，我會引用頁面的段落回答。"
            "Ask me about Deep Learning 101's pages; I answer with quoted passages and links to them.",
    "thanks": "不客氣！還有其他關於 Deep Learning 101 的問題嗎？ You're welcome: anything else about the portal?",
    "farewell": "再見，歡迎隨時回來問！ Goodbye, come back any time.",
    "about": "我是 Deep Learning 101 的問答助理：只根據入口網站的頁面回答，每個回答都引用頁面的段落，附上該頁該節的連結；"
             "頁面沒寫的，我會直說。例如：「語音去噪模型多大？」 I answer from Deep Learning 101's pages only, "
             "quoting them with links to the exact section, and I say so when no page answers. "
             "Try: \"How big is the speech denoising model?\"",
    "acknowledgement": "好的！還有其他問題嗎？ OK: anything else you would like to ask?",
}

# Between parts of a message: punctuation, emoji and other symbols (and spaces, around them).
_PARTS = re.compile(r"\s*(?:[,，、.。!！?？~～:：;；…\-—\"“”「」()（）\[\]]|[^\w\s'])+\s*")
# Sentence particles that end a Chinese phrase without changing it (「你好啊」, 「謝謝囉」, 「好喔喔」).
_PARTICLES = re.compile(r"[啊阿呀吧呢啦囉喔哦嘛唷欸耶哈的]+$")
# "hiii", "helloooo", "thanksss", "goood", 「哈哈哈哈」 are the same word.
_STRETCHED = re.compile(r"([^\W\d_])\1{2,}")


@dataclass(frozen=True)
class SmallTalk:
    """A message that is small talk: what kind, and the reply the bot gives."""

    kind: str
    reply: str


def _phrase_kind(part: str) -> str | None:
    """The kind of one part of a message, or None when it is not a social phrase."""
    part = " ".join(part.lower().split())
    for candidate in dict.fromkeys((part, _STRETCHED.sub(r"\1", part), _STRETCHED.sub(r"\1\1", part),
                                    _PARTICLES.sub("", part))):
        kind = _KIND_OF.get(candidate)
        if kind:
            return kind
        words = candidate.split()       # "hi faq-bot", "thanks bot": a greeting that names the bot
        if len(words) > 1 and words[-1] in ("bot", "faq-bot", "faqbot", "機器人", "小幫手", "助理", "everyone", "all"):
            kind = _KIND_OF.get(" ".join(words[:-1]))
            if kind:
                return kind
    return None


def _parts(text: str) -> list[str]:
    return [p for p in _PARTS.split(normalize(text).replace("’", "'")) if p.strip()]


def small_talk(message: str, in_conversation: bool = False) -> SmallTalk | None:
    """The reply to a message made only of social phrases (`_PHRASES`), or None for a question.
    `in_conversation` (the message leans on earlier turns): "what can you do" and "test" forms are
    questions about the topic there, not small talk. A message of marks alone ("???") is no small
    talk: `retrieve.check_question` refuses it."""
    parts = _parts(message)
    if not parts:      # 👍 / 🙏 alone is a reply (marks alone are refused before: check_question)
        return SmallTalk("acknowledgement", REPLIES["acknowledgement"]) if has_pictographs(message) else None
    kinds = set()
    for part in parts:
        kind = _phrase_kind(part)
        if kind is not None:
            kinds.add(kind)
            continue
        words = part.split()         # 「你好 謝謝」: phrases apart by spaces only
        word_kinds = [_phrase_kind(w) for w in words] if len(words) > 1 else [None]
        if None in word_kinds:
            return None
        kinds.update(word_kinds)
    if in_conversation and kinds & set(_SELF_KINDS):     # 「怎麼用？」 after 「RAG 是什麼？」
        return None
    kind = next(k for k in _PRIORITY if k in kinds)
    return SmallTalk(kind, REPLIES[kind])


# A message of more reading units than this (CJK characters or Latin words) is never small talk by
# its meaning alone: the 24 small-talk messages of the probes and check set M have 2 to 12.
SMALL_TALK_MAX_UNITS = 16
# How far above the nearest short answerable question that stands alone the threshold on the
# closeness to a small-talk phrase is set (bench/calibrate.py, `SmallTalkReader.nearness`).
SMALL_TALK_MARGIN = 0.01


# A key word more passages than this write is a topic of the portal, not small talk's own, though a
# small-talk phrase uses it (ai 428 passages, 測試 121, 機器人 47, 聊天 12; 你好 1, 辛苦 5, 幫 8).
SMALL_TALK_WORD_PASSAGES = 10
# The kinds that ask about the bot itself. In a conversation their phrases ask about the topic
# before (「怎麼用？」 after 「RAG 是什麼？」); by meaning, such a message must address the bot:
# 「人類可以做什麼」 and 「測試要怎麼做」 read as close to 「你可以做什麼」 and 「測試」 as small talk does.
_SELF_KINDS = ("about", "test")
_ADDRESSED = re.compile(r"[你您妳]|\b(?:you|u|ya|bot)\b", re.IGNORECASE)


class SmallTalkReader:
    """How close a message is in meaning to small talk: the cosine of its vector with the nearest
    of `_PHRASES`, embedded once by the searcher's model (as queries, like the message). Phrases
    catch the forms written down; this catches their paraphrases (「嗨嗨，你可以幫我做什麼？」), which
    the decision model had answered with whatever page says 幫 or 做. `passages(word)`: how many
    passages write a word (Searcher.term_frequency)."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], passages: Callable[[str], int]):
        self._embed = embed
        self._passages = passages
        self._lock = threading.Lock()
        self._vectors: np.ndarray | None = None
        self._kinds = [kind for kind, phrases in _PHRASES.items() for _ in phrases]

    def _phrase_vectors(self) -> np.ndarray:
        with self._lock:
            if self._vectors is None:
                self._vectors = np.asarray(self._embed([p for ps in _PHRASES.values() for p in ps]), dtype=np.float32)
            return self._vectors

    def nearest(self, vector: np.ndarray) -> tuple[str, float]:
        """The kind of the closest small-talk phrase and its cosine (vectors are L2-normalised)."""
        scores = self._phrase_vectors() @ np.asarray(vector, dtype=np.float32).reshape(-1)
        best = int(np.argmax(scores))
        return self._kinds[best], float(scores[best])

    def nearness(self, message: str, result, points_back: bool) -> tuple[str, float] | None:
        """The nearest small-talk kind and cosine of a short message (SMALL_TALK_MAX_UNITS) that
        does not point back to an earlier turn (「那它的缺點呢？」 is as short and vague), else None.
        `result`: the message's SearchResult (its concepts and own vector). bench/calibrate.py
        fits the threshold on this for the answerable questions, none of which `closeness` admits."""
        vector = getattr(result, "question_vector", None)
        if vector is None or points_back or reading_length(message) > SMALL_TALK_MAX_UNITS:
            return None
        return self.nearest(vector)

    def closeness(self, message: str, result, points_back: bool) -> tuple[str, float] | None:
        """`nearness`, for a message that may be small talk by meaning at all, else None: every key
        word one that small-talk phrases use and few passages write (`only_small_talk_words`), and
        addressing the bot if what it is closest to asks about the bot."""
        words = [c.text for c in result.query.concepts if not c.earlier]
        if not only_small_talk_words(words) or any(self._passages(w) > SMALL_TALK_WORD_PASSAGES for w in words):
            return None
        near = self.nearness(message, result, points_back)
        if near is None or (near[0] in _SELF_KINDS and not _ADDRESSED.search(normalize(message))):
            return None
        return near

    def read(self, message: str, result, threshold: float | None, points_back: bool = False) -> SmallTalk | None:
        """Small talk by meaning (`closeness` at least `threshold`); None without a threshold (a
        model not calibrated)."""
        if threshold is None:
            return None
        near = self.closeness(message, result, points_back)
        return SmallTalk(near[0], REPLIES[near[0]]) if near and near[1] >= threshold else None


@lru_cache(maxsize=1)
def _phrase_words() -> frozenset[str]:
    cutter = word_cutter()
    words = set()
    for phrases in _PHRASES.values():
        for phrase in phrases:
            words.add(phrase.lower())
            words.update(w.lower() for w in (phrase.split() if phrase.isascii() else cutter.words(phrase)) if w.strip())
    return frozenset(words)


_REPEATED = re.compile(r"([^\W\d_])\1+")


def only_small_talk_words(words: Sequence[str]) -> bool:
    """Whether every key word of a message is a word of the small-talk phrases (as typed:
    「哈哈哈哈」 is 哈哈, 「嗨嗨」 嗨): small talk names nothing of its own. 「GAN 可以做什麼」 and
    「膠囊網路怎麼用」 read as close to 「你可以做什麼」 and 「怎麼用」 (0.91-0.93) as real small talk
    does, but GAN and 膠囊網路 are what they ask about."""
    vocabulary = _phrase_words()
    return all(any(form in vocabulary for form in (w, _STRETCHED.sub(r"\1\1", w), _REPEATED.sub(r"\1", w)))
               for w in (w.lower() for w in words))


# The courtesy a question may open or close with: greetings and thanks, and 請問 / "please" that
# only introduce it. Not "ok" or 好 (「好的模型要怎麼選」), nor what the bot is.
_COURTESY_KINDS = ("greeting", "thanks")
_OPENERS = ("請問", "請問一下", "想請問", "想請問一下", "想問", "想問一下", "想問下", "問一下", "請教", "請教一下",
            "想請教", "想請教一下", "麻煩問一下", "不好意思", "打擾了", "打擾一下", "不好意思打擾一下", "麻煩了",
            "麻煩你了", "拜託", "please", "excuse me", "sorry", "sorry to bother you", "quick question")
# Chinese courtesy that opens a question with no mark after it: 「你好請問 RAG 是什麼」.
_CJK_OPENING = re.compile(r"^(?:你好|您好|哈囉|嗨|不好意思|想請問一下|想問一下|請問一下|想請問|想問下|請問|想問)+")
_CJK_CLOSING = re.compile(r"(?:謝謝(?:你|您)?|感謝(?:你|您)?|麻煩了)$")
# what may follow a courtesy phrase cut off a question's start: marks, but not an opening quote
_AFTER_OPENING = re.compile(r"^[\s,，、.。!！?？~～:：;；…\-—]+")
# the units a message's edges are read in: an English word, or a run of other word characters
_UNIT = re.compile(r"[A-Za-z][A-Za-z']*|[^\W\d_A-Za-z]+|\d+")
_ENGLISH = re.compile(r"[A-Za-z][A-Za-z']*")
_JOINED = re.compile(r"[-_/‐‑–]")     # a word's part, not a word: Hi-Fi, Hi–Fi, hi_res
# After an English greeting at a question's start: a mark, or a question's first word ("Hello how
# big is…"), not "Hello World 範例在哪？"
_MARK_AFTER = re.compile(r"\s*[,，.。!！?？:：;；~～…\-—]")
_ASKING = re.compile(r"(?:what|how|who|why|when|where|which|is|are|do|does|did|can|could|should|would|will|"
                     r"any|i|please|tell|quick)\b", re.IGNORECASE)
_QUOTE_BEFORE = re.compile(r"[「『“\"']\s*$")
_QUOTE_AFTER = re.compile(r"^\s*[」』”\"']")
_TRAILING_MARKS = re.compile(r"[\s,，、:：;；~～-]+$")
MAX_PHRASE_WORDS = 4        # "thank you very much"


def _courtesy(part: str) -> bool:
    lowered = normalize(part).strip().lower()          # Simplified 谢谢 / 请问 too
    return _phrase_kind(lowered) in _COURTESY_KINDS or lowered in _OPENERS


def _traditional(run: str) -> str:
    """A run of Chinese characters in Traditional form, character for character (else as it is)."""
    converted = normalize(run)
    return converted if len(converted) == len(run) else run


def _has_content(text: str) -> bool:
    return bool(_UNIT.search(text))


def _opening_cut(text: str) -> int:
    """Where the question starts after one courtesy phrase at its start (0: none there)."""
    units = list(_UNIT.finditer(text))
    if not units:
        return 0
    first = units[0]
    if _ENGLISH.fullmatch(first.group()):
        # the longest run of English words, apart by spaces only, that is one courtesy phrase
        n = 1
        while n < min(MAX_PHRASE_WORDS, len(units)) and text[units[n - 1].end():units[n].start()].isspace() \
                and _ENGLISH.fullmatch(units[n].group()):
            n += 1
        for size in range(n, 0, -1):
            end = units[size - 1].end()
            if _courtesy(" ".join(u.group() for u in units[:size])) and not _JOINED.match(text, end) \
                    and (_MARK_AFTER.match(text, end) or _ASKING.match(text[end:].lstrip())):
                return end
        return 0
    if _QUOTE_BEFORE.search(text[:first.start()]):
        return 0                         # 「你好」怎麼翻譯: a quoted word, not a greeting
    if _courtesy(first.group()):
        return first.end()
    m = _CJK_OPENING.match(_traditional(first.group()))
    # only where a word ends: 「你好像答錯了」 opens with 你 / 好像, 「想問題」 with 想 / 問題
    if m and _ends_a_word(first.group(), m.end()):
        return first.start() + m.end()
    return 0


def _ends_a_word(run: str, end: int) -> bool:
    """Whether jieba's cut of a run of Chinese characters has a word boundary at `end`."""
    position = 0
    for word in word_cutter().words(run):
        position += len(word)
        if position >= end:
            return position == end
    return True


def _closing_cut(text: str) -> int:
    """Where the question ends before one courtesy phrase at its end (len(text): none there)."""
    units = list(_UNIT.finditer(text))
    if not units:
        return len(text)
    last = units[-1]
    if _ENGLISH.fullmatch(last.group()):
        n = 1
        while n < min(MAX_PHRASE_WORDS, len(units)) and text[units[-n - 1].end():units[-n].start()].isspace() \
                and _ENGLISH.fullmatch(units[-n - 1].group()):
            n += 1
        for size in range(n, 0, -1):
            start = units[-size].start()
            if _closing_courtesy(" ".join(u.group() for u in units[-size:])) and not _JOINED.match(text[start - 1:start]):
                return start
        return len(text)
    if _QUOTE_AFTER.match(text[last.end():]):
        return len(text)                 # 「TTS 怎麼唸「你好」」: a quoted word
    if _closing_courtesy(last.group()):
        return last.start()
    m = _CJK_CLOSING.search(_traditional(last.group()))
    return last.start() + m.start() if m and m.start() > 0 else len(text)


def _closing_courtesy(part: str) -> bool:
    """Thanks, or 麻煩了 / please, which close a question; not a greeting ("Say hello")."""
    lowered = normalize(part).strip().lower()
    return _phrase_kind(lowered) == "thanks" or lowered in _OPENERS


def without_courtesy(question: str) -> str:
    """The question without the greetings and thanks it opens or closes with (「你好，請問 RAG 是
    什麼？」 -> 「RAG 是什麼？」, "Hi, what is RAG?" -> "what is RAG?", 「…怎麼設？謝謝！」 ->
    「…怎麼設？」). Unchanged when nothing else would be left."""
    text = question.strip().replace("’", "'")        # iOS types What’s
    asks = re.search(r"[?？]\s*$", text)
    while (cut := _opening_cut(text)) and _has_content(text[cut:]):
        text = _AFTER_OPENING.sub("", text[cut:]).lstrip()      # 「想問「黑執事」…」 keeps its 「
    while (cut := _closing_cut(text)) < len(text) and _has_content(text[:cut]):
        text = _TRAILING_MARKS.sub("", text[:cut])
    if text == question.strip().replace("’", "'"):
        return question                                   # as given, spaces and all
    if asks and not re.search(r"[?？]\s*$", text):        # "What is RAG, please?" keeps its mark
        text += asks.group().strip()
    return text
