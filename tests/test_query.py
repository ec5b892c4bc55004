"""`faq-bot search --jsonl`, `faq-bot ask` and `faq-bot eval` on the fixture index."""
from __future__ import annotations

import json

import pytest

from conftest import FIXTURE_CONFIG, FIXTURES, run_cli, search_one

HIT_KEYS = {"source", "path", "url", "title", "section", "text", "score"}


def _search_jsonl(index, lines: list[str], *extra: str):
    return run_cli("search", "--jsonl", "--config", str(FIXTURE_CONFIG), "--index", str(index), *extra,
                   input="".join(line + "\n" for line in lines))


def test_jsonl_answers_one_line_per_question_in_the_stable_shape(fixture_index):
    questions = ["語音去噪模型多大？", "混合檢索是怎麼做的", "台北明天會下雨嗎？"]
    result = _search_jsonl(fixture_index, [json.dumps({"question": q}, ensure_ascii=False) for q in questions])
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["question"] for r in rows] == questions
    for row in rows:
        assert set(row) == {"question", "answerable", "hits"}
        assert isinstance(row["answerable"], bool)
        assert 1 <= len(row["hits"]) <= 10
        for hit in row["hits"]:
            assert set(hit) == HIT_KEYS
            assert hit["source"] in ("site", "papers")
            assert not hit["path"].startswith("/")                # relative to the source folder
            assert hit["url"].startswith("https://")
    speech, rag, weather = rows
    assert speech["answerable"] and speech["hits"][0]["path"] == "speech.md"
    assert speech["hits"][0]["url"] == "https://example.org/speech#語音增強-speech-enhancement"
    assert rag["answerable"] and rag["hits"][0]["path"] == "rag.md"
    assert weather["answerable"] is False


def test_jsonl_bad_lines_get_errors_and_the_rest_is_answered(fixture_index):
    lines = ["{not json", json.dumps({"question": ""}), json.dumps({"question": "x" * 2001}),
             json.dumps({"question": 42}), json.dumps(["語音"]), "",
             json.dumps({"question": "混合檢索是怎麼做的"})]
    result = _search_jsonl(fixture_index, lines)
    assert result.returncode == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 6                                         # the blank line is skipped
    assert "not valid JSON" in rows[0]["error"] and rows[0]["line"] == 1
    assert "empty" in rows[1]["error"]
    assert "2001 characters" in rows[2]["error"] and "2000" in rows[2]["error"]
    assert "must be text" in rows[3]["error"]
    assert "must be text" in rows[4]["error"]
    assert rows[5]["hits"][0]["path"] == "rag.md"
    assert "5 line(s) could not be searched" in result.stderr


def test_control_characters_are_removed_not_fatal(fixture_index):
    question = "混合\x00檢索\x1b是怎麼\u200b做的\x7f"
    result = _search_jsonl(fixture_index, [json.dumps({"question": question})])
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["question"] == question and row["hits"][0]["path"] == "rag.md"


def test_k_limits_the_hits(fixture_index):
    assert len(search_one(fixture_index, "語音", FIXTURE_CONFIG, "--k", "3")["hits"]) == 3
    bad = run_cli("search", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index), "--k", "0", "語音")
    assert bad.returncode == 2 and "--k" in bad.stderr


def test_search_needs_a_question_or_jsonl(fixture_index):
    result = run_cli("search", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index))
    assert result.returncode == 2 and "--jsonl" in result.stderr


@pytest.mark.parametrize("question", ["怎麼申請台灣護照？", "请推荐好吃的牛肉面",
                                      "How do I schedule a training pipeline with Airflow?"])
def test_questions_the_pages_do_not_answer_are_not_answered(fixture_index, question):
    assert search_one(fixture_index, question)["answerable"] is False


@pytest.mark.parametrize("question, path", [("等錯誤率 EER 是怎麼定義的", "speech.md"),
                                            ("DeepKE 可以做什麼", "NLP Information Extraction/DeepKE.md"),
                                            ("本地部署大模型可以用什麼工具", "rag.md")])
def test_questions_the_pages_answer_are_answered(fixture_index, question, path):
    result = search_one(fixture_index, question)
    assert result["answerable"] is True
    assert result["hits"][0]["path"] == path


def test_ask_prints_passages_with_numbered_citations(fixture_index):
    result = run_cli("ask", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index), "你們做語音去噪最後模型多大？")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "9 MB" in out and "[1]" in out
    assert "[1] 那些語音處理踩的坑 › 語音增強 (Speech Enhancement)" in out
    assert "https://example.org/speech#語音增強-speech-enhancement" in out


def test_ask_says_not_found_with_the_closest_pages(fixture_index):
    result = run_cli("ask", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index), "怎麼申請台灣護照？")
    assert result.returncode == 0, result.stderr
    assert "Not found in the portal" in result.stdout
    assert "Closest pages:" in result.stdout and "https://" in result.stdout


def test_ask_json_has_escaped_markdown(fixture_index):
    result = run_cli("ask", "--json", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index),
                     "閱讀理解模型用什麼微調？corpus-xss")
    answer = json.loads(result.stdout)
    assert set(answer) >= {"answerable", "answer_markdown", "citations"}
    assert "<script>" not in answer["answer_markdown"]
    assert all(set(c) == {"n", "title", "section", "url", "snippet"} for c in answer["citations"])


@pytest.mark.parametrize("question, message", [("   ", "empty"), ("問" * 2001, "limit is 2000")])
def test_ask_refuses_bad_questions_clearly(fixture_index, question, message):
    result = run_cli("ask", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index), question)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_eval_prints_the_metrics(fixture_index):
    result = run_cli("eval", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index),
                     str(FIXTURES / "questions.yaml"), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert set(metrics) >= {"page@1", "page@5", "evidence@5", "mrr@10", "abstention", "false_abstention"}
    assert metrics["answerable_items"] == 4 and metrics["unanswerable_items"] == 2
    assert metrics["evidence@5"] == 1.0 and metrics["abstention"] == 1.0
    text = run_cli("eval", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index),
                   str(FIXTURES / "questions.yaml")).stdout
    assert "evidence@5: 1.000" in text and "abstention: 1.000" in text


def test_eval_refuses_a_malformed_question_file(fixture_index, tmp_path):
    bad = tmp_path / "q.yaml"
    bad.write_text("- question: 只有頁面沒有證據\n  page: site/speech.md\n", encoding="utf-8")
    result = run_cli("eval", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index), str(bad))
    assert result.returncode == 2 and "both 'page' and 'evidence'" in result.stderr
    missing = run_cli("eval", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index), str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and "not found" in missing.stderr
