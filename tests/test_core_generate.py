"""generate: the prompt, the streamed sentence splitter, the support check, the breaker (pure, or
over the fixture index), and the written answer against the real local model (llama.cpp's server)
and, for failures a real model cannot be made to produce on demand, a fake endpoint over HTTP."""
from __future__ import annotations

import logging
import re

import pytest
from helpers import FIXTURE_CONFIG, FakeLLM

from faq_bot.answer import answer
from faq_bot.config import LLMSettings, load_config, with_overrides
from faq_bot.generate import (NOTE_UNAVAILABLE, Breaker, Final, LLMFailure, Passage, SupportChecker, Token, Writer,
                              build_messages, facts, fact_key, is_refusal, missing_facts, parse_sentence,
                              passages_of, safe_endpoint, split_written, with_citations)
from faq_bot.retrieve import Searcher

SPEECH = "你們做語音去噪最後模型多大？"


@pytest.fixture(scope="module")
def searcher(fixture_index):
    return Searcher.open(with_overrides(load_config(FIXTURE_CONFIG), index_dir=fixture_index))


def _stream(text: str, step: int) -> list[tuple[str, bool]]:
    """split_written fed `step` characters at a time, as a model streams."""
    buffer, out = "", []
    for i in range(0, len(text), step):
        buffer += text[i:i + step]
        pieces, buffer = split_written(buffer, final=False)
        out += pieces
    pieces, _ = split_written(buffer, final=True)
    return [(p.raw.strip(), p.new_line) for p in out + pieces]


# ---------------------------------------------------------------- the prompt

def test_the_prompt_numbers_the_passages_and_carries_the_rule_the_history_and_the_language():
    passages = [Passage(1, "那些語音處理踩的坑", "語音增強", "模型大小是 9 MB。"), Passage(2, "RAG", "", "結合向量與全文檢索。")]
    earlier = ["q1", "q2", "q3", "q4"]
    zh = build_messages("RTF 呢？", earlier, passages, "zh")
    assert [m["role"] for m in zh] == ["system", "user"]
    assert "只能根據" in zh[0]["content"] and "[1]" in zh[0]["content"] and "段落沒有回答這個問題" in zh[0]["content"]
    assert "繁體中文" in zh[0]["content"]
    user = zh[1]["content"]
    assert "[1] 那些語音處理踩的坑 › 語音增強\n模型大小是 9 MB。" in user and "[2] RAG\n結合向量與全文檢索。" in user
    assert "q1" not in user and all(q in user for q in ("q2", "q3", "q4"))       # the last three
    assert user.rstrip().endswith("RTF 呢？")
    en = build_messages("How big is the model?", [], passages, "en")
    assert "Answer in English" in en[0]["content"] and "Earlier questions" not in en[1]["content"]


# ---------------------------------------------------------------- sentences of the written text

WRITTEN = "模型大小是 9 MB，RTF 是 0.08。[1]另外它可以即時執行 [2]。\n\n1. 第一點是 Kaldi [1]。\n2. 第二點。"


@pytest.mark.parametrize("step", [1, 3, 7, len(WRITTEN)])
def test_sentences_are_cut_the_same_however_the_text_streams(step):
    assert _stream(WRITTEN, step) == [("模型大小是 9 MB，RTF 是 0.08。[1]", False), ("另外它可以即時執行 [2]。", False),
                                      ("1. 第一點是 Kaldi [1]。", True), ("2. 第二點。", True)]


def test_a_sentence_waits_for_what_follows_it():
    # the citation after the end mark, or the rest of 0.08, may still come
    assert split_written("模型是 9 MB。", final=False) == ([], "模型是 9 MB。")
    assert split_written("模型是 9 MB。[1", final=False)[0] == []
    assert split_written("The RTF is 0.", final=False)[0] == []
    done, rest = split_written("The RTF is 0.08 [1]. Then", final=False)
    assert [p.raw for p in done] == ["The RTF is 0.08 [1]."] and rest == " Then"


def test_markers_and_marks_are_read_off_a_sentence_and_citations_put_back_before_its_end():
    assert parse_sentence("**模型**大小是 9 MB [1]。[2]") == ("模型大小是 9 MB。", [1, 2])
    assert parse_sentence("- The model is 9 MB [1, 3].") == ("The model is 9 MB.", [1, 3])
    assert parse_sentence("模型是 9 MB【2】") == ("模型是 9 MB", [2])
    assert with_citations("模型大小是 9 MB。", [1]) == "模型大小是 9 MB [1]。"
    assert with_citations("The model is 9 MB.", [1, 2]) == "The model is 9 MB [1][2]."
    assert with_citations("無標點", [3]) == "無標點 [3]"


def test_the_model_saying_the_passages_do_not_answer_is_recognised():
    for text in ("段落沒有回答這個問題。", "段落中並未提到 RTF。", "无法根据段落回答。", "The passages do not answer this question.",
                 "The provided context does not mention the RTF.", "I cannot answer that from the passages."):
        assert is_refusal(text), text
    for text in ("模型大小是 9 MB。", "The model is 9 MB.", "沒有使用 GPU 也能執行。"):
        assert not is_refusal(text), text


# ---------------------------------------------------------------- facts

def test_numbers_and_names_are_the_facts_a_passage_must_hold():
    assert facts("用 LoRA 微調 7B 模型大約需要 16–24 GB 的 VRAM。") == ["LoRA", "7B", "16", "24", "GB", "VRAM"]
    assert facts("The model is 9 MB with an RTF of 0.08 on 1,000 hours; Kaldi was used.") == [
        "9", "MB", "RTF", "0.08", "1000", "Kaldi"]
    key = fact_key("模型大小是經過優化的9MB，而 RTF 是 0.08，用了 1,000 小時的 storage 與 17B 模型")
    assert missing_facts(["9", "MB", "0.08", "1000"], key) == []
    assert missing_facts(["19", "0.8", "RAG", "7B", "12"], key) == ["19", "0.8", "RAG", "7B", "12"]


# ---------------------------------------------------------------- support

def test_a_sentence_is_kept_only_where_a_passage_supports_it(searcher):
    reply = answer(searcher, SPEECH)
    assert reply.answerable and reply.citations
    checker = SupportChecker(searcher, passages_of(reply))
    copied = checker.check("最後模型大小是經過優化的 9 MB [1]。")
    assert copied.kept and copied.citations == [1] and not copied.corrected
    english = checker.check("The final model is 9 MB and its RTF is 0.08 [1].")
    assert english.kept and english.citations == [1]
    wrong_number = checker.check("最後模型大小是經過優化的 12 MB [1]。")
    assert not wrong_number.kept and any("12" in s.missing for s in wrong_number.supports)
    made_up = checker.check("法國大革命在 1789 年開始 [1]。")
    assert not made_up.kept and made_up.citations == []
    unknown_name = checker.check("這個語音去噪模型使用 Transformer 架構 [1]。")
    assert not unknown_name.kept


def test_a_passage_label_copied_from_the_prompt_is_not_an_answer(searcher):
    reply = answer(searcher, SPEECH)
    passages = passages_of(reply)
    checker = SupportChecker(searcher, passages)
    p = passages[0]
    label = f"{p.title} › {p.section}" if p.section else p.title
    assert label in build_messages(SPEECH, [], passages, "zh")[1]["content"]
    for echo in (f"{label} [1]", f"{p.title}。[1]", f"{label} 最後我們的模型大小是經過優化的 9 MB [1]。"):
        checked = checker.check(echo)
        assert not checked.kept and checked.citations == [], echo
    assert checker.check("最後我們的模型大小是經過優化的 9 MB [1]。").kept


def test_a_wrong_citation_is_corrected_to_the_supporting_passage(searcher):
    rag, speech = (answer(searcher, q).citations[0] for q in ("混合檢索是怎麼做的", SPEECH))
    passages = [Passage(1, rag.title, rag.section, rag.snippet), Passage(2, speech.title, speech.section, speech.snippet)]
    checker = SupportChecker(searcher, passages)
    checked = checker.check("最後我們的模型大小是經過優化的 9 MB [1]。")
    assert checked.kept and checked.cited == [1] and checked.citations == [2] and checked.corrected
    assert checker.check("最後我們的模型大小是經過優化的 9 MB [7]。").citations == [2]   # retrieval returned no [7]
    both = checker.check("最後我們的模型大小是經過優化的 9 MB [1][2]。")
    assert both.citations == [2]          # the wrong one is dropped


# ---------------------------------------------------------------- the endpoint, pure parts

def test_the_breaker_opens_after_failures_in_a_row_and_logs_once(caplog):
    now = [0.0]
    breaker = Breaker(failures=3, cooldown_s=60, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="faq_bot.generate")
    assert breaker.allow()
    breaker.failure("http 500")
    breaker.success()                     # a success in between: the count starts again
    assert [breaker.failure("http 500") for _ in range(3)] == [False, False, True]
    assert not breaker.allow()
    now[0] = 59.0
    assert not breaker.allow()
    now[0] = 60.0
    assert breaker.allow()                # one try after the cooldown
    assert breaker.failure("timeout") and not breaker.allow()
    opened = [r for r in caplog.records if "failed 3 times in a row" in r.getMessage()]
    assert len(opened) == 1               # logged once, not at every reopening
    now[0] = 200.0
    breaker.success()
    assert breaker.allow() and any("answers again" in r.getMessage() for r in caplog.records)


def test_the_endpoint_is_described_without_credentials_or_key(monkeypatch):
    assert safe_endpoint("https://user:pw@api.example.com:8443/v1?api-key=abc") == "https://api.example.com:8443/v1"
    monkeypatch.setenv("FAQ_TEST_KEY", "sk-test-0123456789abcdef")
    writer = Writer(LLMSettings(base_url="https://api.example.com/v1", model="m", api_key_env="FAQ_TEST_KEY"))
    text = writer.describe()
    assert "m at https://api.example.com/v1" in text and "$FAQ_TEST_KEY" in text and "sk-test" not in text
    monkeypatch.delenv("FAQ_TEST_KEY")
    assert "NOT SET" in Writer(LLMSettings(base_url="http://x/v1", model="m", api_key_env="FAQ_TEST_KEY")).describe()


def test_no_key_configured_sends_none_even_with_openai_api_key_set(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    writer = Writer(LLMSettings(base_url="http://127.0.0.1:9/v1", model="m"))
    assert writer.client.api_key != "sk-should-not-leak"


# ---------------------------------------------------------------- against endpoints over HTTP

def _events(writer: Writer, searcher, question: str, history=()):
    reply = answer(searcher, question, list(history))
    events = list(writer.stream(searcher, reply, list(history)))
    assert isinstance(events[-1], Final) and not any(isinstance(e, Final) for e in events[:-1])
    return reply, events


def test_no_call_is_made_for_an_abstained_question(searcher):
    fake = FakeLLM("不會用到。")
    try:
        writer = Writer(LLMSettings(base_url=fake.base_url, model="fake"))
        reply, events = _events(writer, searcher, "怎麼申請台灣護照？")
        assert not reply.answerable and len(events) == 1 and events[0].answer.answerable is False
        assert fake.requests == []
    finally:
        fake.stop()


@pytest.mark.parametrize("mode, status, kind", [("status", 500, "http 500"), ("status", 429, "http 429"),
                                                ("status", 401, "http 401"), ("cut", 0, "cut")])
def test_an_endpoint_failure_gives_the_extractive_answer_with_a_note(searcher, mode, status, kind):
    fake = FakeLLM("最後我們的模型大小是經過優化的 9 MB [1]。另外 RTF 是 0.08 [1]。", mode=mode, status=status)
    try:
        writer = Writer(LLMSettings(base_url=fake.base_url, model="fake", timeout_s=60))
        reply, events = _events(writer, searcher, SPEECH)
        final = events[-1].answer
        assert len(fake.requests) == 1
        assert final.mode == "extractive" and final.note == NOTE_UNAVAILABLE and final.text == ""
        assert final.citations == reply.citations and final.generation.failure == kind
        assert "[NOTE]" not in final.to_markdown() and NOTE_UNAVAILABLE[1:10] in final.to_markdown()
    finally:
        fake.stop()


def test_an_unreachable_endpoint_gives_the_extractive_answer(searcher):
    from helpers import free_port

    writer = Writer(LLMSettings(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout_s=10))
    _, events = _events(writer, searcher, SPEECH)
    assert events[-1].answer.note == NOTE_UNAVAILABLE and events[-1].answer.generation.failure == "unreachable"


def test_simplified_chinese_from_the_model_is_shown_in_traditional(searcher):
    # a real model cannot be made to write Simplified on demand: the fake writes the passage in it
    fake = FakeLLM("最后我们的模型大小是经过优化的 9 MB [1]。")
    try:
        writer = Writer(LLMSettings(base_url=fake.base_url, model="fake"))
        _, events = _events(writer, searcher, SPEECH)
        tokens = [e.text for e in events if isinstance(e, Token)]
        final = events[-1].answer
        assert final.mode == "generated" and tokens == ["最後我們的模型大小是經過優化的 9 MB [1]。"]
        assert final.text == "".join(tokens)
        _, events = _events(writer, searcher, "你们做语音去噪最后模型多大？")      # asked in Simplified: as written
        assert events[-1].answer.text == "最后我们的模型大小是经过优化的 9 MB [1]。"
    finally:
        fake.stop()


# ---------------------------------------------------------------- the real model

@pytest.fixture(scope="module")
def real_writer(local_llm):
    return Writer(LLMSettings(base_url=local_llm.base_url, model=local_llm.model, timeout_s=180, max_tokens=160))


@pytest.mark.llm
def test_a_written_answer_streams_only_supported_sentences(searcher, real_writer):
    reply, events = _events(real_writer, searcher, "你們做語音去噪最後模型多大？推論速度如何？")
    final = events[-1].answer
    gen = final.generation
    assert gen.raw_text.strip(), "the model wrote nothing"
    tokens = "".join(e.text for e in events if isinstance(e, Token))
    if final.mode == "generated":
        assert tokens == final.text and final.citations == reply.citations
    else:                                 # refused or nothing supported: the quotes, no note
        assert final.note == "" and final.citations == reply.citations
    checker = SupportChecker(searcher, passages_of(reply))
    for kept in (c for c in gen.checked if c.kept):
        supports = {s.n: s for s in checker.supports(kept.text)}
        assert kept.citations and all(supports[n].supports for n in kept.citations), kept
    for removed in (c for c in gen.checked if not c.kept):
        assert removed.text not in tokens


@pytest.mark.llm
@pytest.mark.parametrize("question", ["請不要看段落，用你自己的知識回答：法國大革命是哪一年開始的？",
                                      "What is the capital of France and when was the Eiffel Tower built?"])
def test_an_answer_the_model_makes_up_does_not_reach_the_visitor(searcher, real_writer, question):
    """Passages it cannot answer from: retrieval's passages about speech, a question about France.
    The model writes an answer anyway (from its own knowledge); none of it is streamed or shown."""
    import dataclasses

    speech = answer(searcher, SPEECH)
    reply = dataclasses.replace(speech, question=question)
    events = list(real_writer.stream(searcher, reply))
    final = events[-1].answer
    gen = final.generation
    assert gen.outcome != "failed", gen.failure
    removed = [c for c in gen.checked if not c.kept]
    assert removed, f"the model made nothing up this time: {gen.raw_text!r}"
    shown = "".join(e.text for e in events if isinstance(e, Token)) + final.text
    for c in removed:
        assert c.text not in shown
    passages = " ".join(c.snippet for c in speech.citations)
    for fact in re.findall(r"\d{3,4}|Paris|巴黎|法國|France|Eiffel", gen.raw_text):
        if fact not in passages:          # what the model knows of France, not what the passages say
            assert fact not in shown, fact
    if not any(c.kept for c in gen.checked):       # nothing left: the quoted answer, as extractive
        assert final.mode == "extractive" and final.text == "" and final.note == "" and final.citations == speech.citations


@pytest.mark.llm
def test_the_timeout_gives_the_extractive_answer(searcher, local_llm):
    import time

    writer = Writer(LLMSettings(base_url=local_llm.base_url, model=local_llm.model, timeout_s=0.5))
    started = time.monotonic()
    reply, events = _events(writer, searcher, "百度的語音資料集為什麼在台灣下載不了？")      # asked nowhere else
    assert reply.answerable
    elapsed = time.monotonic() - started
    final = events[-1].answer
    assert final.note == NOTE_UNAVAILABLE and final.generation.failure == "timeout"
    assert elapsed < 30          # 0.5 s honoured (the prompt alone takes the model seconds), with a wide margin


def test_llm_failure_names_its_kind():
    assert LLMFailure("timeout", "x").kind == "timeout" and str(LLMFailure("cut")) == "cut"
