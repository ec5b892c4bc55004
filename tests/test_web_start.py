"""`faq-bot serve` with no index, as the Space starts after a restart: it listens at once, says what
it is doing on /healthz, answers /api/ask with 503 + Retry-After while it pulls settings.index_url (or
builds from the sources), then answers from the new index in the same process."""
from __future__ import annotations

import time

import pytest
from helpers import GatedFile, http_json, start_empty_server, wait_for_health

QUESTION = {"question": "你們做語音去噪最後模型多大？"}


def _healthz_within(url: str, proc, seconds: float) -> dict:
    """The first /healthz answer, which must come within `seconds` of starting the process (the
    start-up deadline the issue sets; not a measurement)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        assert proc.poll() is None, "the server exited"
        try:
            return http_json(url + "/healthz", timeout=1)[2]
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"/healthz did not answer within {seconds} s")


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except Exception:  # noqa: BLE001
        proc.kill()


@pytest.fixture()
def gated(fixture_archive):
    g = GatedFile(fixture_archive.read_bytes())
    yield g
    g.stop()


def test_empty_index_pulls_index_url_and_answers_without_restart(tmp_path, gated):
    proc, url, log = start_empty_server(tmp_path, {"index_url": gated.url})
    try:
        first = _healthz_within(url, proc, 5)
        assert first["state"] in ("starting", "pulling")
        # mid-download (the file server holds back the second half): 503 with Retry-After and how far
        status = wait_for_health(url, proc, lambda s: s["state"] == "pulling" and (s["progress"] or 0) >= 0.5)
        assert status["message"] == "正在下載索引… 50%"
        code, headers, data = http_json(url + "/api/ask", QUESTION)
        assert code == 503 and int(headers["Retry-After"]) >= 1
        assert data["error"] == "正在下載索引… 50%" and data["status"]["state"] == "pulling"
        gated.release()
        ready = wait_for_health(url, proc, lambda s: s["state"] == "ready")
        code, _, data = http_json(url + "/api/ask", QUESTION)
        assert code == 200 and data["answerable"] and "9 MB" in data["answer_markdown"]
        assert ready["build"].startswith("build-") and (tmp_path / "index" / ready["build"]).is_dir()
        assert proc.poll() is None and gated.requests == 1
    finally:
        _stop(proc)


def test_empty_index_without_a_usable_url_builds_from_the_sources(tmp_path, fixture_archive):
    """index_url names no archive (404): logged, and the server builds from the sources instead."""
    gone = GatedFile(b"", name="other.tar.gz")          # answers 404 for index.tar.gz
    proc, url, log = start_empty_server(tmp_path, {"index_url": gone.url.replace("other", "index")})
    try:
        first = _healthz_within(url, proc, 5)
        assert first["state"] in ("starting", "pulling", "building")
        code, headers, data = http_json(url + "/api/ask", QUESTION)
        assert code == 503 and int(headers["Retry-After"]) >= 1 and data["error"]
        wait_for_health(url, proc, lambda s: s["state"] == "ready")
        code, _, data = http_json(url + "/api/ask", QUESTION)
        assert code == 200 and "9 MB" in data["answer_markdown"]
        text = log.read_text(encoding="utf-8")
        assert "HTTP 404" in text and "building from the sources instead" in text
    finally:
        _stop(proc)
        gone.stop()


def test_a_build_that_cannot_be_made_is_reported_as_failed(tmp_path):
    """No index, no index_url and a source folder that does not exist (no git URL to clone): the
    server stays up, /healthz says failed (503) with the reason, /api/ask 503."""
    proc, url, _ = start_empty_server(tmp_path, {}, site=tmp_path / "no-such-site")
    try:
        _healthz_within(url, proc, 5)
        status = wait_for_health(url, proc, lambda s: s["state"] == "failed")
        assert "no-such-site" in status["detail"]
        code, _, _ = http_json(url + "/healthz")
        assert code == 503
        code, headers, data = http_json(url + "/api/ask", QUESTION)
        assert code == 503 and "Retry-After" in headers and data["status"]["state"] == "failed"
    finally:
        _stop(proc)
