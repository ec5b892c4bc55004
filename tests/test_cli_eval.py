"""`faq-bot eval QUESTIONS.yaml`: the metrics of the dev.yaml format, computed right, and clear
errors for question files it cannot use."""
from __future__ import annotations

import json

import pytest
import yaml

from helpers import FIXTURE_CONFIG, FIXTURES, run_cli

METRICS = ("answer@evidence", "page@1", "page@5", "evidence@5", "mrr@10", "abstention")


def _eval(index, questions, *extra: str):
    return run_cli("eval", "--config", str(FIXTURE_CONFIG), "--index", str(index), str(questions), *extra)


def test_eval_prints_every_metric(fixture_index):
    """tests/fixtures/questions.yaml: four answerable questions (one Simplified, one English) and
    two no page answers."""
    result = _eval(fixture_index, FIXTURES / "questions.yaml")
    assert result.returncode == 0, result.stderr
    printed = {line.split(":")[0].strip(): line.split(":")[1].strip()
               for line in result.stdout.split("\n\n")[0].splitlines()}
    assert set(METRICS) <= set(printed)
    assert printed["evidence@5"] == "1.000" and printed["abstention"] == "1.000"
    assert printed["answerable_items"] == "4" and printed["unanswerable_items"] == "2"


def test_eval_metrics_are_computed_as_dev_yaml_defines_them(fixture_index, tmp_path):
    """Known outcomes: one question whose evidence is at rank 1, one whose evidence no page has,
    one "unanswerable" item the pages do answer and one they do not."""
    questions = tmp_path / "q.yaml"
    questions.write_text(yaml.safe_dump([
        {"question": "混合檢索是怎麼做的", "kind": "found", "page": "site/rag.md", "evidence": "結合向量與全文檢索"},
        {"question": "混合檢索是怎麼做的", "kind": "nowhere", "page": "site/rag.md", "evidence": "這句話不在任何頁面上"},
        {"question": "混合檢索是怎麼做的", "kind": "oos"},
        {"question": "怎麼申請台灣護照？", "kind": "oos"},
    ], allow_unicode=True), encoding="utf-8")
    result = _eval(fixture_index, questions, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["metrics"] == {"answer@evidence": 0.5, "page@1": 0.5, "page@5": 0.5, "evidence@5": 0.5, "mrr@10": 0.5,
                                 "false_abstention": 0.0, "abstention": 0.5,
                                 "answerable_items": 2, "unanswerable_items": 2}
    assert report["by_kind"]["found"]["evidence@5"] == 1.0 and report["by_kind"]["nowhere"]["page@5"] == 0.0
    assert report["by_kind"]["oos"]["abstention"] == 0.5
    assert report["by_kind"]["found"]["answer@evidence"] == 1.0 and report["by_kind"]["nowhere"]["answer@evidence"] == 0.0


def test_follow_up_items_are_asked_with_their_history(fixture_index, tmp_path):
    """A follow-up means nothing alone; with its history it is answered as the chat answers it, and
    answer@evidence checks the quoted passages the visitor reads. (Its words are ones the fixture's
    few pages write: "那推論速度呢？" asks 速度, which none of them does, so a calibration fitted on the
    real portal may refuse it here for that alone.)"""
    questions = tmp_path / "q.yaml"
    questions.write_text(yaml.safe_dump([
        {"question": "那它跑得多快？", "kind": "followup", "history": ["你們做語音去噪最後模型多大？"],
         "page": "site/speech.md", "evidence": "RTF 是 0.08"},
    ], allow_unicode=True), encoding="utf-8")
    report = json.loads(_eval(fixture_index, questions, "--json").stdout)
    assert report["metrics"]["answer@evidence"] == 1.0 and report["metrics"]["false_abstention"] == 0.0
    questions.write_text(yaml.safe_dump([{"question": "那呢？", "history": "not a list"}], allow_unicode=True),
                         encoding="utf-8")
    bad = _eval(fixture_index, questions)
    assert bad.returncode == 2 and "'history' must be a list" in bad.stderr


@pytest.mark.parametrize("content, message", [
    ("- question: 只有頁面沒有證據\n  page: site/speech.md\n", "must have both 'page' and 'evidence'"),
    ("- question: 證據是數字\n  page: site/speech.md\n  evidence: 42\n", "must be non-empty text"),
    ("- question: 證據是空的\n  page: site/speech.md\n  evidence: ''\n", "must be non-empty text"),
    ("- kind: oos\n", "item 0 needs a non-empty 'question'"),
    ("questions:\n  - question: 不是清單\n", "expected a non-empty list"),
    ("- question: [unclosed\n", "cannot parse"),
])
def test_malformed_question_files_are_refused(fixture_index, tmp_path, content, message):
    questions = tmp_path / "q.yaml"
    questions.write_text(content, encoding="utf-8")
    result = _eval(fixture_index, questions)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_question_file_is_named(fixture_index, tmp_path):
    result = _eval(fixture_index, tmp_path / "none.yaml")
    assert result.returncode == 2 and "question file not found" in result.stderr and "none.yaml" in result.stderr


def test_quality_gate_exits_1_below_a_floor(fixture_index):
    """The refresh workflow publishes only when `faq-bot eval` passes its floors and ceilings."""
    passed = _eval(fixture_index, FIXTURES / "questions.yaml", "--floor", "evidence@5=0.5", "--ceiling",
                   "false_abstention=0.5")
    assert passed.returncode == 0, passed.stderr
    failed = _eval(fixture_index, FIXTURES / "questions.yaml", "--floor", "evidence@5=1.01", "--floor",
                   "abstention=0.5", "--ceiling", "false_abstention=-0.01")
    assert failed.returncode == 1
    assert "quality gate: evidence@5 1.000 is below the floor 1.010" in failed.stderr
    assert "quality gate: false_abstention 0.000 is above the ceiling -0.010" in failed.stderr
    assert "abstention" not in failed.stderr.replace("false_abstention", "")     # 1.0 passes its floor 0.5
    bad = _eval(fixture_index, FIXTURES / "questions.yaml", "--floor", "accuracy=0.5")
    assert bad.returncode == 2 and "unknown metric 'accuracy'" in bad.stderr


@pytest.mark.llm
def test_eval_mode_llm_never_holds_less_of_the_answer_than_the_quotes(fixture_index, local_llm, tmp_path):
    """The written reply is scored on what the visitor reads: its text and the passages under it."""
    from helpers import llm_settings, write_config

    config = write_config(tmp_path / "sources.yaml", [
        {"name": "site", "path": str(FIXTURES / "site"), "base_url": "https://example.org/", "url_rule": "jekyll"},
        {"name": "papers", "path": str(FIXTURES / "papers"), "base_url": "https://github.com/example/papers/blob/main/",
         "url_rule": "github"}], {"boilerplate_min_pages": 4, **llm_settings(local_llm.base_url, local_llm.model)})
    # two of the fixture's questions (each written answer costs the local model seconds): one it
    # answers, in English, and one out of scope (no call)
    items = [q for q in yaml.safe_load((FIXTURES / "questions.yaml").read_text(encoding="utf-8"))
             if q["kind"] in ("english", "oos")]
    questions = tmp_path / "questions.yaml"
    questions.write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
    runs = {}
    for mode in ("extractive", "llm"):
        result = run_cli("eval", "--config", str(config), "--index", str(fixture_index), str(questions),
                         "--json", "--mode", mode)
        assert result.returncode == 0, result.stderr
        runs[mode] = json.loads(result.stdout)["metrics"]
    assert runs["llm"]["answer@evidence"] >= runs["extractive"]["answer@evidence"]
    assert runs["llm"]["abstention"] == runs["extractive"]["abstention"]
