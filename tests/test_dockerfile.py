"""The Dockerfile for self-hosting. There is no Docker engine on these machines, so the image is not
built here: its instructions are parsed and checked for what hosting needs (a non-root user, the
index on a volume, a health check on /healthz, the server on all interfaces), and the command that
moves the config's changing paths to /data is run on the real config."""
from __future__ import annotations

import shlex
import subprocess
import sys

from helpers import PRODUCT_CONFIG, ROOT

from faq_bot.config import load_config


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            keyword, _, args = pending.partition(" ")
            out.append((keyword.upper(), args.strip()))
            pending = ""
    return out


def test_runs_as_a_non_root_user_with_the_index_on_a_volume():
    steps = instructions()
    keywords = [k for k, _ in steps]
    assert keywords[0] == "FROM" and steps[0][1].startswith("python:3.11")
    user = [a for k, a in steps if k == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert keywords.index("USER") < keywords.index("CMD")
    assert ('VOLUME', '["/data"]') in steps
    assert ("ENV", "FAQ_BOT_CONFIG=/app/docker-sources.yaml") in steps


def test_healthcheck_asks_healthz_and_the_server_listens_on_all_interfaces():
    steps = dict(instructions())
    assert "/healthz" in steps["HEALTHCHECK"] and "--start-period=" in steps["HEALTHCHECK"]
    assert steps["EXPOSE"] == "7860"
    assert steps["CMD"] == '["faq-bot", "serve", "--host", "0.0.0.0", "--port", "7860"]'


def test_the_docker_config_keeps_the_sources_and_moves_state_to_data(tmp_path):
    """The RUN that writes /app/docker-sources.yaml, run on a copy of corpus/sources.yaml."""
    command = next(a for k, a in instructions() if k == "RUN" and "docker-sources.yaml" in a)
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"]
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "sources.yaml").write_bytes(PRODUCT_CONFIG.read_bytes())
    script = argv[2].replace("/app/docker-sources.yaml", str(tmp_path / "docker-sources.yaml"))
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True)
    docker, product = load_config(tmp_path / "docker-sources.yaml"), load_config(PRODUCT_CONFIG)
    assert str(docker.settings.index_dir) == "/data/index"
    assert str(docker.settings.feedback_log) == "/data/feedback.jsonl"
    assert [str(s.path) for s in docker.sources] == [f"/data/repos/{s.path.name}" for s in product.sources]
    assert [(s.name, s.git, s.base_url) for s in docker.sources] == [(s.name, s.git, s.base_url) for s in product.sources]
    assert docker.settings.index_url == product.settings.index_url
