"""smalltalk.py: which messages are small talk rather than questions, and the courtesy taken off a
question before it is searched."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from faq_bot.retrieve import Concept
from faq_bot.smalltalk import (SMALL_TALK_MAX_UNITS, REPLIES, SmallTalkReader, only_small_talk_words, small_talk,
                               without_courtesy)


@pytest.mark.parametrize("message, kind", [
    ("你好", "greeting"), ("您好！", "greeting"), ("你好啊～", "greeting"), ("哈囉", "greeting"),
    ("hi", "greeting"), ("Hello!", "greeting"), ("hiii", "greeting"), ("Helloooo", "greeting"),
    ("hello bot", "greeting"), ("Good morning!", "greeting"), ("hi 👋", "greeting"), ("How are you?", "greeting"),
    ("谢谢", "thanks"), ("謝謝你", "thanks"), ("Thank you very much!!", "thanks"), ("OK, thanks!", "thanks"),
    ("你好 謝謝", "thanks"),
    ("掰掰", "farewell"), ("謝謝，再見", "farewell"), ("bye", "farewell"),
    ("你是誰？", "about"), ("Who are you?", "about"), ("What can you do?", "about"), ("hi, who are you?", "about"),
    ("怎麼用", "about"),
    ("ok", "acknowledgement"), ("好的", "acknowledgement"), ("好", "acknowledgement"),
    ("哈哈哈哈", "acknowledgement"), ("lol", "acknowledgement"),
    ("測試", "test"), ("test", "test"), ("👍", "acknowledgement"), ("🙏🙏", "acknowledgement"),
])
def test_a_message_of_social_phrases_only_is_small_talk_of_its_kind(message, kind):
    talk = small_talk(message)
    assert talk is not None and talk.kind == kind
    assert talk.reply == REPLIES[kind] and "Deep Learning 101" in REPLIES["greeting"]


@pytest.mark.parametrize("message", [
    "你好，請問 RAG 是什麼？", "Hi, what is RAG?", "RAG", "RAG 是什麼？", "好的模型要怎麼選", "Tell me a joke",
    "謝謝你的回答，那它的 RTF 呢", "test set 要切多少", "測試集要切多少", "？", "", "   ",
])
def test_a_question_or_a_message_without_words_is_no_small_talk(message):
    assert small_talk(message) is None


@pytest.mark.parametrize("question, searched", [
    ("你好，請問 RAG 是什麼？", "RAG 是什麼？"),
    ("你好請問RAG是什麼", "RAG是什麼"),
    ("請問語音去噪模型多大", "語音去噪模型多大"),
    ("哈囉 語音去噪模型多大？", "語音去噪模型多大？"),
    ("謝謝！那 reranker 要用哪一個？", "那 reranker 要用哪一個？"),
    ("batch size 要怎麼設？謝謝！", "batch size 要怎麼設？"),
    ("語音去噪模型多大謝謝", "語音去噪模型多大"),
    ("你好，请问语音去噪模型多大？谢谢", "语音去噪模型多大？"),        # Simplified: taken off, the rest as typed
    ("您好请问RAG是什么", "RAG是什么"),
    ("Hi, what is RAG?", "what is RAG?"),
    ("Hello how big is the speech denoising model?", "how big is the speech denoising model?"),
    ("Hi there, is Whisper covered?", "is Whisper covered?"),
    ("Thank you very much! And what about LoRA?", "And what about LoRA?"),
    ("What is RAG? Thanks!", "What is RAG?"),
    ("What is RAG, please?", "What is RAG?"),          # the question keeps its mark
    ("Hey! What's LoRA's rank?", "What's LoRA's rank?"),
    ("哈囉 想問「黑執事」那場是誰分享的？thx", "「黑執事」那場是誰分享的？"),      # its opening quote kept
    ("Hey, sorry to bother you - who came up with CLIPSeg? Thanks!", "who came up with CLIPSeg?"),
    ("您好，想问下代理人 AI 具体指的是什么呀？麻烦了", "代理人 AI 具体指的是什么呀？"),
])
def test_greetings_and_thanks_around_a_question_are_taken_off(question, searched):
    assert without_courtesy(question) == searched


@pytest.mark.parametrize("question", [
    "你好", "謝謝", "RAG 是什麼？", "好的模型要怎麼選", "test 這個詞", "測試集要切多少",
    "謝謝你的回答，那它的 RTF 呢", "Okay, so what is RAG?", "Hi-Fi GAN 是什麼",
])
def test_what_is_not_courtesy_or_would_leave_nothing_stays(question):
    # 好 / ok and test words open questions too; a message of courtesy alone is small talk's to answer
    assert without_courtesy(question) == question


class FakeEmbedder:
    """Vectors by whether a text is one of three greetings: those point one way, the rest another."""

    def __init__(self):
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.array([[1.0, 0.0] if t in ("你好", "hi", "謝謝") else [0.0, 1.0] for t in texts], dtype=np.float32)


def fake_result(vector, *words: str):
    """What SmallTalkReader reads of a SearchResult: the question's concepts and its own vector."""
    concepts = [Concept(w, (w,), 1.0) for w in words]
    return SimpleNamespace(question_vector=None if vector is None else np.array(vector, dtype=np.float32),
                           query=SimpleNamespace(concepts=concepts))


CLOSE = (0.95, float(np.sqrt(1 - 0.95 ** 2)))
FAR = (0.5, float(np.sqrt(0.75)))


def test_small_talk_by_meaning_is_the_nearest_phrases_kind_above_the_threshold_for_short_messages():
    embed = FakeEmbedder()
    reader = SmallTalkReader(embed, passages=lambda word: 0)
    kind, score = reader.nearest(np.array([1.0, 0.0]))
    assert kind in ("greeting", "thanks") and score == pytest.approx(1.0)
    reader.nearest(np.array([0.6, 0.8]))
    assert embed.calls == 1                       # the phrases are embedded once, at first use
    assert reader.read("嗨嗨，謝啦", fake_result(CLOSE, "嗨嗨", "謝啦"), threshold=0.9).kind in ("greeting", "thanks")
    assert reader.read("嗨嗨，謝啦", fake_result(FAR, "嗨嗨", "謝啦"), threshold=0.9) is None
    assert reader.read("嗨" * (SMALL_TALK_MAX_UNITS + 1), fake_result(CLOSE), threshold=0.9) is None   # too long
    assert reader.read("嗨嗨", fake_result(CLOSE, "嗨嗨"), threshold=None) is None      # no calibration for this model
    assert reader.read("嗨嗨", fake_result(None, "嗨嗨"), threshold=0.9) is None
    assert reader.read("嗨嗨", fake_result(CLOSE, "嗨嗨"), threshold=0.9, points_back=True) is None


def test_a_message_that_names_something_is_no_small_talk_by_meaning():
    assert only_small_talk_words(["機器人", "真人"]) and only_small_talk_words(["talking"]) and only_small_talk_words([])
    assert only_small_talk_words(["哈哈哈哈", "笑", "死", "你好", "可愛"])       # stretched as typed
    assert not only_small_talk_words(["gan"]) and not only_small_talk_words(["膠囊", "網路"])
    written = {"機器人": 47, "ai": 428}
    reader = SmallTalkReader(FakeEmbedder(), passages=lambda word: written.get(word, 0))
    assert reader.read("GAN 可以做什麼", fake_result(CLOSE, "gan"), threshold=0.9) is None
    # a word small talk uses but many passages write is a topic of the portal
    assert reader.read("機器人是什麼", fake_result(CLOSE, "機器人"), threshold=0.9) is None
    assert reader.read("嗨嗨，謝啦", fake_result(CLOSE, "嗨嗨", "謝啦"), threshold=0.9) is not None


def test_asking_about_the_bot_by_meaning_must_address_it():
    reader = SmallTalkReader(lambda texts: np.array([[1.0, 0.0] if t == "你可以做什麼" else [0.0, 1.0] for t in texts],
                                                    dtype=np.float32), passages=lambda word: 0)
    assert reader.read("人類可以做什麼", fake_result(CLOSE, "可以"), threshold=0.9) is None
    assert reader.read("嗨，你可以幫我什麼", fake_result(CLOSE, "幫"), threshold=0.9).kind == "about"


@pytest.mark.parametrize("message", ["你好像答錯了", "想問題的時候該怎麼做", "TTS 怎麼唸「你好」", '"Hello" 的中文是什麼',
                                     "Hello World 範例在哪一頁？", "Say hello", "How does the model generate greetings?",
                                     "SUP 是什麼", "Hi–Fi GAN"])
def test_courtesy_words_inside_words_quotes_or_names_stay(message):
    assert without_courtesy(message) == message


def test_a_question_after_a_greeting_and_its_mark_is_found_and_a_chat_keeps_its_topic():
    assert without_courtesy("你好？那它在 CPU 上的 RTF 大概是多少") == "那它在 CPU 上的 RTF 大概是多少"
    assert without_courtesy("Hey, what’s up? What is RAG?") == "What is RAG?"
    assert small_talk("What’s up?").kind == "greeting"
    # in a conversation 「怎麼用？」 asks about the topic before; a thanks is still small talk
    assert small_talk("怎麼用？", in_conversation=True) is None and small_talk("怎麼用？").kind == "about"
    assert small_talk("謝謝", in_conversation=True).kind == "thanks"
