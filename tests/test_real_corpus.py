"""The real portal: a few real pages in the default run, and the whole of ../shared/corpus in one
integration test (about 10 minutes of embedding on 2 cores; deselect with -m "not integration")."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import DEV_QUESTIONS, SHARED_CORPUS, live_chunks, run_cli, write_config

PORTAL = SHARED_CORPUS / "deep-learning-101.github.io"
REAL_PAGES = ["GPU.md", "Speech-Processing.md", "RAG.md", "html/NO30.html"]
needs_corpus = pytest.mark.skipif(not PORTAL.is_dir(), reason="../shared/corpus is not beside this checkout")


def _dev_items() -> list[dict]:
    return yaml.safe_load(DEV_QUESTIONS.read_text(encoding="utf-8"))


def _key(text: str) -> str:
    import unicodedata

    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


@pytest.fixture(scope="module")
def real_index(tmp_path_factory) -> Path:
    """Four real portal pages, copied to a temporary folder at test time and ingested."""
    root = tmp_path_factory.mktemp("real")
    site = root / "deep-learning-101.github.io"
    for rel in REAL_PAGES:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PORTAL / rel, site / rel)
    config = write_config(root / "sources.yaml", [{
        "name": "deep-learning-101.github.io", "path": str(site),
        "base_url": "https://deep-learning-101.github.io/", "url_rule": "jekyll"}],
        {"boilerplate_min_pages": 3})
    index = root / "index"
    result = run_cli("ingest", "--config", str(config), "--index", str(index))
    assert result.returncode == 0, result.stderr
    return index, config


@needs_corpus
def test_real_pages_answer_their_dev_questions(real_index):
    index, config = real_index
    items = [i for i in _dev_items() if i.get("page", "").split("/", 1)[-1] in REAL_PAGES]
    assert len(items) >= 8
    lines = "".join(json.dumps({"question": i["question"]}, ensure_ascii=False) + "\n" for i in items)
    result = run_cli("search", "--jsonl", "--config", str(config), "--index", str(index), input=lines)
    assert result.returncode == 0, result.stderr
    found = 0
    for item, line in zip(items, result.stdout.splitlines()):
        row = json.loads(line)
        evidence = _key(item["evidence"])
        found += any(evidence in _key(h["text"][:500]) for h in row["hits"][:5])
    assert found / len(items) >= 0.8, f"evidence in the top 5 for {found} of {len(items)}"


@needs_corpus
def test_real_boilerplate_is_kept_once(real_index):
    index, _ = real_index
    chunks = live_chunks(index)
    intro = [c for c in chunks if "AI是一條孤獨且充滿惶恐及未知的旅程" in c["text"]]
    assert len(intro) == 1
    # the portal's own titles, not the site-wide front-matter title
    titles = {c["path"]: c["title"] for c in chunks}
    assert titles["GPU.md"].startswith("解析探索大型語言模型")
    assert titles["html/NO30.html"].startswith("科技大擂台語音閱讀理解競賽心得")
    assert all("tailwind" not in c["text"].lower() for c in chunks)
    assert {c["url"] for c in chunks} == {"https://deep-learning-101.github.io/GPU",
                                          "https://deep-learning-101.github.io/Speech-Processing",
                                          "https://deep-learning-101.github.io/RAG",
                                          "https://deep-learning-101.github.io/html/NO30.html"}


@pytest.mark.integration
@needs_corpus
def test_whole_corpus_ingest_and_quality(tmp_path):
    """The product as a user runs it: ingest ../shared/corpus, evaluate on dev.yaml, re-ingest.
    Floors sit under the targets (evidence@5 0.90, abstention 0.80) so the test guards against
    regressions without being tuned to the last item; bench/quality.py prints the real figures."""
    index = tmp_path / "index"
    built = run_cli("ingest", "--corpus", str(SHARED_CORPUS), "--index", str(index), "--quiet", timeout=3600)
    assert built.returncode == 0, built.stderr
    chunks = live_chunks(index)
    assert len({(c["source"], c["path"]) for c in chunks}) >= 115
    assert {c["source"] for c in chunks} == {"deep-learning-101.github.io", "Speech-Processing-Paper",
                                             "Natural-Language-Processing-Paper", "Computer-Vision-Paper"}
    intro = [c for c in chunks if "AI是一條孤獨且充滿惶恐及未知的旅程" in c["text"]]
    assert len(intro) == 1

    evaluated = run_cli("eval", str(DEV_QUESTIONS), "--index", str(index), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout)["metrics"]
    assert metrics["evidence@5"] >= 0.8, metrics
    assert metrics["page@5"] >= 0.8, metrics
    assert metrics["abstention"] >= 0.6, metrics
    assert metrics["false_abstention"] <= 0.2, metrics

    again = run_cli("ingest", "--corpus", str(SHARED_CORPUS), "--index", str(index))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("index is up to date")
