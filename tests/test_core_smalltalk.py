"""smalltalk.py: which messages are small talk rather than questions, and the courtesy taken off a
question before it is searched."""
from __future__ import annotations

import numpy as np
import pytest

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
    ("測試", "test"), ("test", "test"),
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
    """Vectors by a message's first character class: 你/hi-like texts point one way, questions another."""

    def __init__(self):
        self.calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.array([[1.0, 0.0] if t in ("你好", "hi", "謝謝") else [0.0, 1.0] for t in texts], dtype=np.float32)


def test_small_talk_by_meaning_is_the_nearest_phrases_kind_above_the_threshold_for_short_messages():
    embed = FakeEmbedder()
    reader = SmallTalkReader(embed)
    kind, score = reader.nearest(np.array([1.0, 0.0]))
    assert kind in ("greeting", "thanks") and score == pytest.approx(1.0)
    assert embed.calls == 1                       # the phrases are embedded once, at first use
    reader.nearest(np.array([0.6, 0.8]))
    assert embed.calls == 1
    close, far = np.array([0.95, np.sqrt(1 - 0.95 ** 2)]), np.array([0.5, np.sqrt(0.75)])
    assert reader.read("你是機器人還是真人", close, threshold=0.9).kind in ("greeting", "thanks")
    assert reader.read("你是機器人還是真人", far, threshold=0.9) is None
    assert reader.read("語" * (SMALL_TALK_MAX_UNITS + 1), close, threshold=0.9) is None     # too long to be small talk
    assert reader.read("你好呀", close, threshold=None) is None          # no calibration for this model
    assert reader.read("你好呀", None, threshold=0.9) is None


def test_a_message_that_names_something_is_no_small_talk_by_meaning():
    assert only_small_talk_words(["機器人", "真人"]) and only_small_talk_words(["talking"]) and only_small_talk_words([])
    assert not only_small_talk_words(["gan"]) and not only_small_talk_words(["膠囊", "網路"])
    assert only_small_talk_words(["哈哈哈哈", "笑", "死", "你好", "可愛"])       # stretched as typed
    reader = SmallTalkReader(FakeEmbedder())
    close = np.array([1.0, 0.0])
    assert reader.read("GAN 可以做什麼", close, threshold=0.9, words=["gan"]) is None
    assert reader.read("你是機器人還是真人", close, threshold=0.9, words=["機器人", "真人"]) is not None
