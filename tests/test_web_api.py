"""The JSON API, CORS, limits, the widget files, the visitor log and the live index swap, over
HTTP against a real `faq-bot serve` on a localhost port."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from helpers import FIXTURE_CONFIG, ask_stream, run_cli, start_server

PORTAL = "https://deep-learning-101.github.io"


def request(url: str, body: bytes | None = None, headers: dict | None = None, method: str | None = None):
    """(status, headers, parsed JSON or text) without raising on 4xx."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, hdrs, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    text = raw.decode("utf-8")
    try:
        return status, hdrs, json.loads(text)
    except json.JSONDecodeError:
        return status, hdrs, text


def ask(server, payload, headers=None):
    # UTF-8, except a lone surrogate, which no encoding writes: JSON's escape for it (as a browser's
    # JSON.stringify sends it), which is what "backslashreplace" writes inside a JSON string
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode(
        "utf-8", "backslashreplace")
    return request(server.url + "/api/ask", body, {"Content-Type": "application/json", **(headers or {})})


def test_ask_returns_the_answer_with_citations(server):
    status, _, data = ask(server, {"question": "你們做語音去噪最後模型多大？"})
    assert status == 200
    assert data["answerable"] is True
    assert "9 MB" in data["answer_markdown"]
    first = data["citations"][0]
    assert set(first) == {"n", "title", "section", "url", "snippet"}
    assert first["n"] == 1 and first["url"].startswith("https://example.org/speech#語音增強-speech-enhancement:~:text=")
    assert "RTF" in first["snippet"]


def test_ask_abstains_with_suggestions(server):
    status, _, data = ask(server, {"question": "怎麼申請台灣護照？"})
    assert status == 200
    assert data["answerable"] is False and data["citations"] == []
    assert data["suggestions"] and "沒有回答" in data["answer_markdown"]


def test_small_talk_is_answered_in_kind_and_a_greeting_in_the_history_is_passed_over(server):
    status, _, data = ask(server, {"question": "hi!"})
    assert status == 200 and data["answerable"] is False and data["mode"] == "small_talk"
    assert "Deep Learning 101" in data["text"] and data["text"] in data["answer_markdown"].replace("\\", "")
    assert "沒有回答" not in data["answer_markdown"] and data["suggestions"] == []
    # in words no phrase list has: small talk by its meaning (its vector's closeness to the phrases)
    from faq_bot.smalltalk import small_talk
    assert small_talk("嗨嗨，你可以幫我做什麼？") is None
    status, _, data = ask(server, {"question": "嗨嗨，你可以幫我做什麼？"})
    assert status == 200 and data["mode"] == "small_talk" and data["citations"] == []
    # the follow-up leans on the question before the thanks, as if the thanks were not there
    alone = ask(server, {"question": "那它的 RTF 呢？", "history": ["語音去噪模型多大？"]})[2]
    status, _, data = ask(server, {"question": "謝謝！那它的 RTF 呢？",
                                   "history": ["你好", "語音去噪模型多大？", "謝謝", "？"]})
    assert status == 200 and data["citations"] == alone["citations"]


def test_follow_up_uses_the_previous_question(server):
    status, _, data = ask(server, {"question": "那它的 RTF 呢？", "history": ["語音去噪模型多大？"]})
    assert status == 200 and data["answerable"]
    assert data["citations"][0]["url"].startswith("https://example.org/speech")
    status, _, data = ask(server, {"question": "那它呢？", "history": [{"role": "user", "content": "混合檢索是怎麼做的"},
                                                                     {"role": "assistant", "content": "..."}]})
    assert data["citations"][0]["url"].startswith("https://example.org/rag")


@pytest.mark.parametrize("payload, status, message", [
    (b"{not json", 400, "malformed JSON"),
    (b"\xff\xfe", 400, "malformed JSON"),
    (b"[1, 2]", 400, "JSON object"),
    ({"question": ""}, 400, "empty"),
    ({"question": "   \n"}, 400, "empty"),
    ({"question": 12}, 400, "must be text"),
    ({}, 400, "must be text"),
    ({"question": "問" * 2001}, 413, "limit is 2000"),
    ({"question": "RAG", "history": "not a list"}, 400, "history must be a list"),
    (b"{\"question\": \"" + b"x" * 70000 + b"\"}", 413, "body over"),
    # the catalogue of issue 9: each was a 500, or a 200 that cost seconds
    ({"question": "語音\ud800去噪"}, 400, "invalid Unicode"),
    ({"question": "那它呢？", "history": ["語音\udc00去噪"]}, 400, "history turn 1: the question holds invalid Unicode"),
    ({"question": "那它呢？", "history": [{"role": "user", "content": "\ud83d"}]}, 400, "invalid Unicode"),
    # anywhere in the history, also where nothing reads it: the bot's turns, a pair's answer, old turns
    ({"question": "那它呢？", "history": [{"role": "assistant", "content": "答\udfff"}]}, 400,
     "history turn 1 holds invalid Unicode (an unpaired surrogate, U+DFFF"),
    ({"question": "那它呢？", "history": [["RAG 是什麼", "答\ud800"]]}, 400, "history turn 1 holds invalid Unicode"),
    ({"question": "那它呢？", "history": ["\ud800"] + ["RAG"] * 30}, 400, "history turn 1 holds invalid Unicode"),
    (b"[" * 5000, 400, "nested 5000 levels deep"),
    (b'{"question": "RAG", "history": ' + b"[" * 40 + b"]" * 40 + b"}", 400, "nested 41 levels deep"),
    ({"question": "RAG", "history": [1, 2]}, 400, "history turn 1 must be an earlier question"),
    ({"question": "RAG", "history": [{"role": "user", "content": ["RAG"]}]}, 400, "history turn 1 must be"),
    ({"question": "RAG", "history": [None]}, 400, "history turn 1 must be"),
    ({"question": "？！…"}, 400, "the question has no words, only marks"),
    ({"question": "那它呢？", "history": ["語" * 1900, "語" * 2001]}, 413, "history turn 2: the question is 2001"),
], ids=lambda v: (repr(v)[:40] + "…") if isinstance(v, (bytes, str, dict)) and len(repr(v)) > 40 else None)
def test_bad_requests_get_4xx_with_a_clear_message(server, payload, status, message):
    got, _, data = ask(server, payload)
    assert got == status
    assert message in data["error"]


def test_cors_allows_the_portal_only(server):
    preflight = {"Origin": PORTAL, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    status, headers, _ = request(server.url + "/api/ask", headers=preflight, method="OPTIONS")
    assert status == 200 and headers["access-control-allow-origin"] == PORTAL
    status, headers, _ = ask(server, {"question": "混合檢索是怎麼做的"}, {"Origin": PORTAL})
    assert status == 200 and headers["access-control-allow-origin"] == PORTAL
    evil = {**preflight, "Origin": "https://evil.example"}
    status, headers, _ = request(server.url + "/api/ask", headers=evil, method="OPTIONS")
    assert status == 400 and "access-control-allow-origin" not in headers
    _, headers, _ = ask(server, {"question": "混合檢索是怎麼做的"}, {"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in headers


def test_widget_and_demo_are_served(server):
    status, headers, js = request(server.url + "/widget.js")
    assert status == 200 and headers["content-type"].startswith("application/javascript")
    assert "/api/ask" in js and "attachShadow" in js and "innerHTML" not in js
    status, _, html = request(server.url + "/widget-demo")
    assert status == 200 and '<script src="/widget.js" defer></script>' in html


def test_gradio_api_endpoint_answers_through_gradio_client(server):
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    result = client.predict("混合檢索是怎麼做的", api_name="/ask")
    assert result["answerable"] is True
    assert result["citations"][0]["url"].startswith("https://example.org/rag")


def test_unanswered_questions_are_logged_and_reported(server):
    ask(server, {"question": "怎麼做紅燒肉最好吃？"})
    ask(server, {"question": "怎麼做紅燒肉最好吃？"})
    records = [json.loads(line) for line in server.feedback_log.read_text(encoding="utf-8").splitlines()]
    missed = [r for r in records if r["type"] == "question" and not r["answerable"]]
    assert any(r["question"] == "怎麼做紅燒肉最好吃?" for r in missed)
    report = run_cli("report", "--config", str(server.config))
    assert report.returncode == 0, report.stderr
    assert "top unanswered:" in report.stdout and "2  怎麼做紅燒肉最好吃?" in report.stdout


def test_report_without_a_log_says_so(tmp_path):
    result = run_cli("report", "--log", str(tmp_path / "none.jsonl"))
    assert result.returncode == 2 and "no visitor log" in result.stderr


def test_rate_limit_returns_429(tmp_path, fixture_index):
    srv = start_server(tmp_path, fixture_index, rate_limit=3)
    try:
        codes = [ask(srv, {"question": "混合檢索是怎麼做的"})[0] for _ in range(3)]
        status, headers, data = ask(srv, {"question": "混合檢索是怎麼做的"})
        other = ask(srv, {"question": "混合檢索是怎麼做的"}, {"X-Forwarded-For": "203.0.113.9"})[0]
    finally:
        srv.stop()
    assert codes == [200, 200, 200]
    assert status == 429 and "too many" in data["error"] and int(headers["retry-after"]) >= 1
    assert other == 200                      # another client is not throttled


def test_a_forged_forwarded_for_does_not_dodge_the_limit(tmp_path, fixture_index):
    """Only a trusted proxy's X-Forwarded-For names the client (here no proxy is trusted)."""
    srv = start_server(tmp_path, fixture_index, rate_limit=2, env={"FORWARDED_ALLOW_IPS": "192.0.2.1"})
    try:
        codes = [ask(srv, {"question": "混合檢索是怎麼做的"}, {"X-Forwarded-For": f"203.0.113.{i}"})[0]
                 for i in range(3)]
    finally:
        srv.stop()
    assert codes == [200, 200, 429]


def test_answers_switch_to_a_new_index_without_restart(server):
    """Re-ingest after a page changes while the server runs: the next answers come from it."""
    question = "交叉編碼器重新排序是在做什麼"
    before = ask(server, {"question": question})[2]
    assert not any("交叉編碼器" in c["snippet"] for c in before["citations"])
    with open(server.site / "rag.md", "a", encoding="utf-8") as f:
        f.write("\n## 重新排序\n\n交叉編碼器重新排序是在檢索之後，把候選段落和問題一起重新打分。\n")
    built = run_cli("ingest", "--config", str(server.config), "--index", str(server.index_dir))
    assert built.returncode == 0, built.stderr
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, data = ask(server, {"question": question})
        assert status == 200
        if data["answerable"] and "交叉編碼器" in data["citations"][0]["snippet"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the server still answers from the old index: {data}")
    assert data["citations"][0]["url"].startswith("https://example.org/rag#重新排序:~:text=")


# ---------------------------------------------------------------- hardening (issue 9)

def raw_exchange(server, head: bytes, chunks: list[bytes] = ()) -> tuple[int, dict]:
    """Send a request's head (and body chunks) over a bare socket and read the response; a server
    that waited for more body than was sent never answers, and the read times out (an error)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
        response = b""
        while b"\r\n\r\n" not in response or len(response.split(b"\r\n\r\n", 1)[1]) < _length(response):
            data = sock.recv(65536)
            if not data:
                break
            response += data
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.split(b"\r\n\r\n", 1)[1])


def _length(response: bytes) -> int:
    for line in response.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


def test_an_oversized_body_is_refused_by_its_length_before_it_is_sent(server):
    """2 MB announced, nothing sent: the 413 comes back at once, so the body was never waited for."""
    head = (b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2000000\r\n\r\n")
    status, data = raw_exchange(server, head)
    assert status == 413 and "body over 64 KB" in data["error"]
    # Gradio's endpoints have a limit of their own (the chat sends the whole conversation)
    status, data = raw_exchange(server, head.replace(b"/api/ask", b"/gradio_api/call/ask"))
    assert status == 413 and "body over 1024 KB" in data["error"]


def test_an_oversized_body_without_a_length_is_refused_once_the_limit_is_read(server):
    head = b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"x" * 16384
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 5        # 80 KB, and the body never ends
    status, data = raw_exchange(server, head, chunks)
    assert status == 413 and "body over 64 KB" in data["error"]


def test_a_long_history_is_fine_its_last_turns_are_used(server):
    history = ["怎麼申請台灣護照？" * 50] * 40 + ["語音去噪模型多大？"]
    status, _, data = ask(server, {"question": "那它的 RTF 呢？", "history": history})
    assert status == 200 and data["answerable"]
    assert data["citations"][0]["url"].startswith("https://example.org/speech")


def test_the_same_question_is_answered_alike_from_memory(server):
    """Asked again, differently spaced (the cache key is the cleaned question), same answer; with
    other history, the follow-up is answered anew."""
    first = ask(server, {"question": "語音去噪模型多大？"})[2]
    again = ask(server, {"question": "  語音去噪模型多大？\n"})[2]
    assert first == again and first["answerable"]
    follow = ask(server, {"question": "那它呢？", "history": ["混合檢索是怎麼做的"]})[2]
    other = ask(server, {"question": "那它呢？", "history": ["語音去噪模型多大？"]})[2]
    assert follow["citations"][0]["url"].startswith("https://example.org/rag")
    assert other["citations"][0]["url"].startswith("https://example.org/speech")


def gradio_call(server, endpoint: str, data: list) -> tuple[int, str, object]:
    """POST /gradio_api/call/ENDPOINT, then read its event stream: (POST status, last event, its data)."""
    status, _, started = request(server.url + f"/gradio_api/call/{endpoint}",
                                 json.dumps({"data": data}).encode(), {"Content-Type": "application/json"})
    if status != 200:
        return status, "", started
    with urllib.request.urlopen(server.url + f"/gradio_api/call/{endpoint}/{started['event_id']}", timeout=60) as r:
        lines = r.read().decode("utf-8").splitlines()
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    payloads = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    return status, events[-1], json.loads(payloads[-1]) if payloads[-1] != "null" else None


@pytest.mark.parametrize("value, message", [
    ("語音\ud800去噪", "invalid Unicode"),
    ("", "empty"),
    (12, "must be text"),
    ({"question": "RAG"}, "must be text"),
    ("問" * 2001, "limit is 2000"),
])
def test_the_gradio_endpoint_refuses_bad_questions_with_a_message(server, value, message):
    status, event, data = gradio_call(server, "ask", [value])
    assert (status, event) == (200, "complete")
    assert message in data[0]["error"]


def test_the_gradio_endpoint_refuses_bodies_the_api_refuses(server):
    status, _, data = request(server.url + "/gradio_api/call/ask", b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                              {"Content-Type": "application/json"})
    assert status == 400 and "nested 5001 levels deep" in data["error"]


def test_the_api_and_the_gradio_endpoint_share_one_rate_limit_and_the_visitor_log(tmp_path, fixture_index):
    """One budget per client, whichever entry point it calls (the chat's: test_web_browser)."""
    from gradio_client import Client

    srv = start_server(tmp_path, fixture_index, rate_limit=3)
    try:
        client = Client(srv.url, verbose=False)
        first = ask(srv, {"question": "混合檢索是怎麼做的"})[0]
        by_gradio = client.predict("語音去噪模型多大？", api_name="/ask")
        second = ask(srv, {"question": "混合檢索是怎麼做的"})[0]
        refused = client.predict("語音去噪模型多大？", api_name="/ask")
        status, headers, data = ask(srv, {"question": "混合檢索是怎麼做的"})
        records = [json.loads(line) for line in srv.feedback_log.read_text(encoding="utf-8").splitlines()]
    finally:
        srv.stop()
    assert (first, second) == (200, 200) and by_gradio["answerable"] is True
    assert "too many questions" in refused["error"]
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert [(r["type"], r["channel"]) for r in records] == [("question", "api"), ("question", "gradio"),
                                                           ("question", "api")]


# ---------------------------------------------------------------- fuzzing the API

def _fuzz_strategies():
    """JSON bodies a careless or hostile client sends: any JSON value (lone surrogates included),
    objects shaped like a request with wrong or odd parts, nesting past any bound, and raw bytes."""
    from hypothesis import strategies as st

    chars = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr), st.sampled_from("語音去噪模型多大？RAG那它呢 "))
    text = st.lists(chars, max_size=40).map("".join) | st.integers(1990, 2010).map(lambda n: "語" * n)
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
    values = st.recursive(leaves, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(text, kids, max_size=4),
                          max_leaves=12)
    message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", 3]), "content": values})
    history = st.lists(text | message | st.lists(values, max_size=2) | values, max_size=25) | values
    request = st.fixed_dictionaries({}, optional={"question": text | values, "history": history, "k": values})

    def dumps(value) -> bytes:
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "backslashreplace")

    nested = st.tuples(st.integers(1, 3000), st.sampled_from("[{")).map(
        lambda t: (t[1] if t[1] == "[" else '{"a":') * t[0])
    return st.one_of(request.map(dumps), values.map(dumps), nested.map(str.encode), st.binary(max_size=200))


@pytest.mark.parametrize("route, examples", [("/api/ask", 300), ("/api/ask/stream", 100)])
def test_fuzzed_requests_never_get_a_5xx_and_every_4xx_says_why(server, route, examples):
    from hypothesis import HealthCheck, given, settings

    seen: dict[int, int] = {}

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_fuzz_strategies())
    def check(body: bytes) -> None:
        status, headers, data = request(server.url + route, body, {"Content-Type": "application/json"})
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (status, body[:200], data)
        if status >= 400:
            assert isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"], (status, data)
        elif route.endswith("/stream"):     # the answer's events; the last is the final answer
            assert status == 200 and headers["content-type"].startswith("text/event-stream"), (status, headers)
            assert "event: final" in data and '"answerable"' in data.rsplit("event: final", 1)[1], data[-300:]
        else:
            assert status == 200 and isinstance(data["answerable"], bool), data

    check()
    assert seen.get(200) and seen.get(400) and seen.get(413), seen     # the fuzz reached each outcome


def test_every_entry_point_writes_the_visitor_log_off_the_event_loop(tmp_path, fixture_index, monkeypatch):
    """A blocking file write on the event loop would stall every request the server holds: the JSON
    API, its stream and the Gradio endpoint each log from a worker thread, where no event loop runs.
    The app runs in this process (uvicorn on a real port, in a thread; no index keeper) so the
    writes can be watched."""
    import asyncio
    import dataclasses
    import shutil
    import socket
    import threading
    import time

    import uvicorn
    from gradio_client import Client

    from faq_bot.config import load_config, with_overrides
    from faq_bot.web.feedback import FeedbackLog
    from faq_bot.web.live import LiveSearcher
    from faq_bot.web.server import create_app

    writes: list[tuple[str, bool]] = []
    real_append = FeedbackLog._append

    def watched_append(self, record: dict) -> None:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        writes.append((record["channel"], on_loop))
        real_append(self, record)

    monkeypatch.setattr(FeedbackLog, "_append", watched_append)
    index_dir = tmp_path / "index"
    shutil.copytree(fixture_index, index_dir)
    config = with_overrides(load_config(FIXTURE_CONFIG), index_dir=index_dir)
    config = dataclasses.replace(config, settings=dataclasses.replace(config.settings,
                                                                      feedback_log=tmp_path / "feedback.jsonl"))
    sock = socket.socket()              # bound here, so no other process can take the port meanwhile
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(config, rate_limit=0, live=LiveSearcher(config)), log_config=None, log_level="warning",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    client = None
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the in-process server did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        assert request(url + "/api/ask", json.dumps({"question": "混合檢索是怎麼做的"}).encode(),
                       {"Content-Type": "application/json"})[0] == 200
        assert ask_stream(url, {"question": "語音去噪模型多大？"})[0] == 200
        client = Client(url, verbose=False)
        assert client.predict("等錯誤率 EER 是怎麼定義的", api_name="/ask")["answerable"] is not None
    finally:
        if client is not None:
            client.close()
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert not thread.is_alive(), "the in-process server did not stop"
    assert writes == [("api", False), ("api", False), ("gradio", False)]
