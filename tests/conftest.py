"""Shared fixtures: one small index per test session, built through the real CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE_CONFIG = FIXTURES / "sources.yaml"
SHARED = ROOT.parent / "shared"
SHARED_CORPUS = SHARED / "corpus"
DEV_QUESTIONS = SHARED / "eval" / "dev.yaml"
OUTPUT_DIR = ROOT / "test-output"     # screenshots and other artefacts a person may look at


def run_cli(*args: str, input: str | None = None, env: dict | None = None, timeout: float = 600,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `faq-bot ARGS` as a subprocess, exactly as a user would."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "faq_bot", *args], input=input, capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd or ROOT)


@pytest.fixture(scope="session")
def fixture_index(tmp_path_factory) -> Path:
    """The fixture site ingested once; tests must not modify it (copy it first)."""
    index_dir = tmp_path_factory.mktemp("fixture-index") / "index"
    result = run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(index_dir))
    assert result.returncode == 0, result.stderr
    return index_dir


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(exist_ok=True)
    return OUTPUT_DIR
