"""Shared fixtures: one small index per test session, built through the real CLI; servers and the
local model started once. Helpers are in helpers.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import FIXTURE_CONFIG, OUTPUT_DIR, IngestRun, Server, llm_settings, run_cli, start_server


@pytest.fixture(scope="session")
def fixture_ingest(tmp_path_factory) -> IngestRun:
    """The fixture site ingested once through the CLI, with what the command printed."""
    index_dir = tmp_path_factory.mktemp("fixture-index") / "index"
    result = run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(index_dir))
    assert result.returncode == 0, result.stderr
    return IngestRun(index_dir, result)


@pytest.fixture(scope="session")
def fixture_index(fixture_ingest) -> Path:
    """The fixture site's index; tests must not modify it (copy it first)."""
    return fixture_ingest.index_dir


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(exist_ok=True)
    return OUTPUT_DIR


@pytest.fixture(scope="session")
def server(tmp_path_factory, fixture_index) -> Server:
    """One `faq-bot serve` (no rate limit) for the API and browser tests. Tests that need their own
    settings (a rate limit, trusted proxies) start their own with `start_server`."""
    srv = start_server(tmp_path_factory.mktemp("web"), fixture_index, rate_limit=0)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def fixture_archive(fixture_index, tmp_path_factory) -> Path:
    """The fixture index packed by `faq-bot index pack` (tests must not modify it)."""
    archive = tmp_path_factory.mktemp("fixture-archive") / "index.tar.gz"
    result = run_cli("index", "pack", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index),
                     "--output", str(archive))
    assert result.returncode == 0, result.stderr
    return archive


@pytest.fixture(scope="session")
def local_llm(tmp_path_factory):
    """The real local model (Qwen2.5-Coder-0.5B, GGUF from PyPI, sha256-checked) behind llama.cpp's
    OpenAI-compatible server, for the whole session. Tests must not stop it (start their own)."""
    import local_llm as llm

    try:
        server = llm.start(tmp_path_factory.mktemp("llm") / "llama-server.log")
    except llm.ModelUnavailable as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llm_web(tmp_path_factory, fixture_index, local_llm) -> Server:
    """One `faq-bot serve` in answer_mode llm with the local model, for the API, SSE and browser
    tests. Each test asks its own questions: an answer is remembered per question."""
    srv = start_server(tmp_path_factory.mktemp("llm-web"), fixture_index, rate_limit=0,
                       settings=llm_settings(local_llm.base_url, local_llm.model))
    yield srv
    srv.stop()
