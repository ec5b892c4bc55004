"""The product as a user runs it on the real corpus: ingest, evaluate on dev.yaml, re-ingest with
nothing changed. Part of the default run; deselect with -m "not integration".

The corpus is a part of ../shared/corpus, copied page by page: every page dev.yaml asks about (32 of
122) and every eighth of each source's others as distractors (a third of the text in all). The whole corpus
embeds 3,300 chunks and 16,000 sentences, about 30 minutes of both cores, which alone kept CI over its
30 minutes (2,409 s at 45de0d6); this part takes about a third of that. bench/quality.py measures the
whole corpus."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import DEV_QUESTIONS, PRODUCT_CONFIG, SHARED_CORPUS, live_chunks, requires_corpus, run_cli

SOURCES = {"deep-learning-101.github.io", "Speech-Processing-Paper", "Natural-Language-Processing-Paper",
           "Computer-Vision-Paper"}


DISTRACTOR_EVERY = 8


def corpus_part(target: Path) -> tuple[set[str], set[str]]:
    """Copy the pages of the part described above into target/<source>/; the ids of the pages
    copied and of those dev.yaml asks about."""
    from faq_bot.config import load_config, with_overrides
    from faq_bot.sources import list_files

    items = yaml.safe_load(DEV_QUESTIONS.read_text(encoding="utf-8"))
    items = items if isinstance(items, list) else items.get("questions") or items.get("items")
    asked = {item["page"] for item in items if item.get("page")}
    config = with_overrides(load_config(PRODUCT_CONFIG), corpus_dir=SHARED_CORPUS)
    chosen = []
    for source in config.sources:      # every source keeps pages, so ingest finds all four
        pages = [(f"{source.path.name}/{f.path}", f.abs_path) for f in list_files(source)]
        chosen += [p for p in pages if p[0] in asked] + [p for p in pages if p[0] not in asked][::DISTRACTOR_EVERY]
    for page_id, path in chosen:
        dest = target / page_id
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    return {page_id for page_id, _ in chosen}, asked


@pytest.mark.integration
@requires_corpus
def test_corpus_ingest_quality_and_no_change_reingest(tmp_path):
    """Floors sit well under the targets (answer@evidence 0.90, evidence@5 0.93, abstention 0.90; bench/quality.py prints
    the real figures) so that tuning does not break the test but a regression does. The ceiling on
    false abstention keeps "refuse everything" from passing the abstention floor."""
    index, corpus = tmp_path / "index", tmp_path / "corpus"
    pages, asked = corpus_part(corpus)
    config = ["--config", str(PRODUCT_CONFIG), "--index", str(index)]
    built = run_cli("ingest", *config, "--corpus", str(corpus), "--quiet", timeout=3600)
    assert built.returncode == 0, built.stderr
    assert built.stdout == ""
    chunks = live_chunks(index)
    assert {c["source"] for c in chunks} == SOURCES
    indexed = {f'{c["source"]}/{c["path"]}' for c in chunks}
    assert asked <= indexed <= pages, (asked - indexed, indexed - pages)
    assert len([c for c in chunks if "AI是一條孤獨且充滿惶恐及未知的旅程" in c["text"]]) == 1   # boilerplate once
    assert all(len(c["text"]) <= 400 for c in chunks)                                       # chunk_max_chars

    evaluated = run_cli("eval", *config, str(DEV_QUESTIONS), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout)["metrics"]
    assert metrics["evidence@5"] >= 0.8, metrics
    assert metrics["answer@evidence"] >= 0.6, metrics            # the reply the visitor reads
    assert metrics["abstention"] >= 0.6, metrics
    assert metrics["false_abstention"] <= 0.2, metrics

    again = run_cli("ingest", *config, "--corpus", str(corpus))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("index is up to date"), again.stdout
