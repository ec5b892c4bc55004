"""POST /api/ask/stream and written answers over HTTP, against a real `faq-bot serve`: with the real
local model (llama.cpp's OpenAI-compatible server) for the behaviours, with a fake endpoint for the
failures a real model cannot be made to produce on demand (an error status, a stream cut half-way),
and with the real server killed mid-answer."""
from __future__ import annotations

import json
import re
import threading
import urllib.request

import pytest
from helpers import ENGLISH_QUESTION, FakeLLM, ask_stream, http_json, llm_settings, start_server

from faq_bot.generate import NOTE_UNAVAILABLE, facts, fact_key, missing_facts, parse_sentence, split_written

pytestmark = pytest.mark.llm


def _sentences(text: str) -> list[tuple[str, list[int]]]:
    pieces, _ = split_written(text, final=True)
    return [parse_sentence(p.raw) for p in pieces]


def _check_final(final: dict) -> None:
    """Every kept sentence cites a passage of the reply, and that passage holds its numbers and names."""
    by_n = {c["n"]: c for c in final["citations"]}
    for text, cited in _sentences(final["text"]):
        assert cited, f"a sentence without a citation: {text}"
        for n in cited:
            assert n in by_n, f"[{n}] is not a passage of the reply: {text}"
            c = by_n[n]
            assert not missing_facts(facts(text), fact_key(f"{c['title']} {c['section']} {c['snippet']}")), (text, c)


# ---------------------------------------------------------------- with the real model

def test_the_stream_is_tokens_then_exactly_one_final_the_same_as_the_json_answer(llm_web):
    question = {"question": "你們做語音去噪最後模型多大？推論速度如何？"}
    status, headers, events = ask_stream(llm_web.url, question)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["X-Accel-Buffering"] == "no" and headers["Cache-Control"] == "no-cache"
    names = [name for name, _ in events]
    assert names[-1] == "final" and names.count("final") == 1 and set(names[:-1]) <= {"token"}
    final = events[-1][1]
    assert final["answerable"] is True and final["citations"]
    written = "".join(data["text"] for name, data in events if name == "token")
    if final["mode"] == "generated":
        assert written and written == final["text"]
        assert "引用段落 Passages" in final["answer_markdown"] and "來源 Sources" in final["answer_markdown"]
        _check_final(final)
    else:           # the model refused or wrote nothing the passages support: the quotes, nothing streamed
        assert final["mode"] == "extractive" and final["text"] == "" and written == ""
    # the JSON API gives the same answer (verified, remembered for this question)
    status, _, data = http_json(llm_web.url + "/api/ask", question, timeout=600)
    assert status == 200 and data == final


def test_every_kept_sentence_cites_a_passage_that_supports_it(llm_web):
    finals = []
    for q in (ENGLISH_QUESTION, "混合檢索是怎麼做的？",
              "聲紋辨識的等錯誤率 EER 是什麼意思？"):
        status, _, events = ask_stream(llm_web.url, {"question": q})
        assert status == 200 and events[-1][0] == "final"
        finals.append(events[-1][1])
    assert any(f["mode"] == "generated" for f in finals), [f["mode"] for f in finals]
    for final in finals:
        assert final["answerable"]
        if final["mode"] == "generated":
            _check_final(final)


def test_an_abstained_question_makes_no_llm_call(llm_web, local_llm):
    before = local_llm.requests()
    status, _, events = ask_stream(llm_web.url, {"question": "怎麼申請台灣護照？"})
    assert status == 200 and [name for name, _ in events] == ["final"]
    final = events[0][1]
    assert final["answerable"] is False and final["mode"] == "extractive" and final["suggestions"]
    status, _, data = http_json(llm_web.url + "/api/ask", {"question": "Ray Tune 做超參數搜尋要怎麼設定？"})
    assert status == 200 and data["answerable"] is False
    assert local_llm.requests() == before


def test_a_follow_up_is_written_with_the_chat_so_far(llm_web):
    status, _, events = ask_stream(llm_web.url, {"question": "那它的 RTF 呢？", "history": ["語音去噪模型多大？"]})
    assert status == 200 and events[-1][0] == "final"
    final = events[-1][1]
    assert final["answerable"] and final["citations"][0]["url"].startswith("https://example.org/speech")


def test_the_stream_refuses_bad_input_like_the_json_api_and_logs_questions(llm_web):
    status, _, data = ask_stream(llm_web.url, {"question": ""})
    assert status == 400 and "empty" in data["error"]
    status, _, data = ask_stream(llm_web.url, {"question": "x" * 2001})
    assert status == 413
    status, _, data = ask_stream(llm_web.url, {"question": "ok", "history": "not a list"})
    assert status == 400 and "history" in data["error"]
    req = urllib.request.Request(llm_web.url + "/api/ask/stream", data=b"[1, 2]", headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=60)
        raise AssertionError("a JSON array was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400 and "JSON object" in json.loads(e.read())["error"]
    status, _, events = ask_stream(llm_web.url, {"question": "台灣的健保卡要怎麼換發？"})
    assert status == 200 and events[-1][1]["answerable"] is False
    log = [json.loads(line) for line in llm_web.feedback_log.read_text(encoding="utf-8").splitlines()]
    # logged as the question was checked (NFKC: the full-width ？ becomes ?)
    assert {"type": "question", "question": "台灣的健保卡要怎麼換發?", "answerable": False, "channel": "api"}.items() <= \
        next(r for r in log if r.get("question") == "台灣的健保卡要怎麼換發?").items()
    assert not any(r.get("question") in ("", "x" * 2001, "ok") for r in log)      # refused questions are not logged


def test_the_stream_shares_the_rate_limit_with_the_json_api(tmp_path, fixture_index):
    srv = start_server(tmp_path, fixture_index, rate_limit=2)      # extractive: the limit is the point
    try:
        assert http_json(srv.url + "/api/ask", {"question": "混合檢索是怎麼做的"})[0] == 200
        status, _, events = ask_stream(srv.url, {"question": "你們做語音去噪最後模型多大？"})
        assert status == 200 and [n for n, _ in events] == ["final"] and events[0][1]["mode"] == "extractive"
        status, headers, data = ask_stream(srv.url, {"question": "RTF 是多少？"})
        assert status == 429 and int(headers["Retry-After"]) >= 1 and "too many" in data["error"]
    finally:
        srv.stop()


def test_a_server_stopped_mid_answer_gives_the_extractive_answer_with_a_note(tmp_path, fixture_index):
    import local_llm as llm

    model = llm.start(tmp_path / "llama-server.log")
    srv = start_server(tmp_path / "web", fixture_index, settings=llm_settings(model.base_url, model.model, max_tokens=300))
    try:
        payload = {"question": "請詳細說明你們做語音去噪時試了哪些架構，最後模型多大、推論速度如何？"}
        req = urllib.request.Request(srv.url + "/api/ask/stream", data=json.dumps(payload, ensure_ascii=False).encode(),
                                     headers={"Content-Type": "application/json"})
        events, name, data = [], None, []
        killed = threading.Event()
        with urllib.request.urlopen(req, timeout=600) as r:
            for raw in r:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    events.append((name, json.loads("".join(data))))
                    name, data = None, []
                    if not killed.is_set() and model.requests() >= 1:
                        model.kill()          # the model is writing: stop its server now
                        killed.set()
        assert killed.is_set(), "the stream finished before the server could be stopped"
        assert [n for n, _ in events][-1] == "final" and [n for n, _ in events].count("final") == 1
        final = events[-1][1]
        assert final["mode"] == "extractive" and final["note"] == NOTE_UNAVAILABLE and final["answerable"]
        assert NOTE_UNAVAILABLE[1:12] in final["answer_markdown"] and final["citations"]
        # the server is gone: the next questions are answered at once from the quotes, never a 500
        for q in ("混合檢索是怎麼做的", ENGLISH_QUESTION,
                  "聲紋辨識的 EER 是什麼？"):
            status, _, data = http_json(srv.url + "/api/ask", {"question": q}, timeout=120)
            assert status == 200 and data["note"] == NOTE_UNAVAILABLE and data["mode"] == "extractive"
        log = (tmp_path / "web" / "server.log").read_text(encoding="utf-8")
        assert log.count("failed 3 times in a row") == 1
    finally:
        srv.stop()
        model.stop()


def test_the_timeout_gives_the_extractive_answer(tmp_path, fixture_index, local_llm):
    import time

    srv = start_server(tmp_path, fixture_index, settings=llm_settings(local_llm.base_url, local_llm.model, timeout_s=0.5))
    try:
        started = time.monotonic()
        status, _, data = http_json(srv.url + "/api/ask", {"question": "閱讀理解模型用什麼微調？"}, timeout=120)
        assert time.monotonic() - started < 60        # 0.5 s honoured, with a wide margin for 2 busy cores
        assert status == 200 and data["answerable"] and data["note"] == NOTE_UNAVAILABLE and data["mode"] == "extractive"
    finally:
        srv.stop()


# ---------------------------------------------------------------- failures a real model cannot make on demand

SUPPORTED = "最後我們的模型大小是經過優化的 9 MB [1]。"


@pytest.fixture(scope="module")
def fake_web(tmp_path_factory, fixture_index):
    """`faq-bot serve` in llm mode with a fake endpoint and a key in the environment."""
    fake = FakeLLM(SUPPORTED)
    key = "sk-faqbot-test-4f1d2c9e8b7a"
    srv = start_server(tmp_path_factory.mktemp("fake-llm-web"), fixture_index,
                       settings=llm_settings(fake.base_url, "fake-model", api_key_env="FAQ_BOT_TEST_KEY", timeout_s=30),
                       env={"FAQ_BOT_TEST_KEY": key})
    yield srv, fake, key
    srv.stop()
    fake.stop()


def _reset(fake_web, question: str) -> None:
    """A successful written answer: the breaker's count of failures in a row starts again."""
    srv, fake, _ = fake_web
    fake.mode, fake.script = "ok", SUPPORTED
    status, _, data = http_json(srv.url + "/api/ask", {"question": question}, timeout=120)
    assert status == 200 and data["mode"] == "generated" and data["text"] == "最後我們的模型大小是經過優化的 9 MB [1]。"


@pytest.mark.parametrize("mode, status, question", [
    ("status", 500, "語音去噪的模型多大？"), ("status", 429, "語音去噪模型最後多大？"), ("status", 401, "語音去噪最後的模型多大？"),
    ("cut", 0, "我們語音去噪最後模型多大？")])
def test_endpoint_failures_never_break_a_reply(fake_web, mode, status, question):
    srv, fake, key = fake_web
    fake.mode, fake.status, fake.script = mode, status, SUPPORTED + "另外 RTF 是 0.08 [1]。" * 4
    calls = len(fake.requests)
    code, _, events = ask_stream(srv.url, {"question": question})
    assert code == 200 and [n for n, _ in events][-1] == "final"
    final = events[-1][1]
    assert final["mode"] == "extractive" and final["note"] == NOTE_UNAVAILABLE and final["answerable"]
    assert "9 MB" in final["answer_markdown"] and len(fake.requests) == calls + 1
    code, _, data = http_json(srv.url + "/api/ask", {"question": question + " "}, timeout=120)
    assert code == 200 and data["note"] == NOTE_UNAVAILABLE           # a failed answer is not remembered
    _reset(fake_web, question + "？")


def test_the_key_goes_to_the_endpoint_and_nowhere_else(fake_web):
    srv, fake, key = fake_web
    fake.mode, fake.status = "status", 401           # the endpoint echoes the key it refused
    code, _, events = ask_stream(srv.url, {"question": "語音去噪模型的大小是多少？"})
    assert code == 200 and key not in json.dumps(events, ensure_ascii=False)
    assert fake.requests[-1]["headers"]["authorization"] == f"Bearer {key}"
    _reset(fake_web, "語音去噪模型的大小是多少呢？")
    for path in ("/widget.js", "/widget-demo", "/healthz", "/"):
        with urllib.request.urlopen(srv.url + path, timeout=60) as r:
            assert key not in r.read().decode("utf-8", "replace")
    log = (srv.config.parent / "server.log").read_text(encoding="utf-8")
    assert key not in log
    # the endpoint is logged at start-up, without the key
    assert re.search(r"answers: written by fake-model at http://127\.0\.0\.1:\d+/v1 \(key from \$FAQ_BOT_TEST_KEY", log)


def test_after_failures_in_a_row_the_endpoint_is_left_alone(fake_web):
    srv, fake, _ = fake_web
    fake.mode, fake.status = "status", 503
    calls = len(fake.requests)
    for i in range(3):
        code, _, data = http_json(srv.url + "/api/ask", {"question": f"語音去噪最後模型多大？第{i}次"}, timeout=120)
        assert code == 200 and data["note"] == NOTE_UNAVAILABLE
    assert len(fake.requests) == calls + 3
    code, _, events = ask_stream(srv.url, {"question": "語音去噪最後模型多大？再一次"})
    assert code == 200 and events[-1][1]["note"] == NOTE_UNAVAILABLE
    assert len(fake.requests) == calls + 3                 # no call while the breaker is open
    log = (srv.config.parent / "server.log").read_text(encoding="utf-8")
    assert log.count("failed 3 times in a row") == 1
