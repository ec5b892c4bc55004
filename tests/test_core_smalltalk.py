"""smalltalk.py: which messages are small talk rather than questions, and the courtesy taken off a
question before it is searched."""
from __future__ import annotations

import pytest

from faq_bot.smalltalk import REPLIES, small_talk, without_courtesy


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
