"""`faq-bot search --jsonl`, the stable machine interface: one JSON line per question in the exact
shape the issue fixes, bad lines answered with an error object without stopping the rest, --k."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import FIXTURE_CONFIG, ROOT, questions_jsonl, run_cli, search_jsonl, search_one

HIT_KEYS = {"source", "path", "url", "title", "section", "text", "score"}


def _rows(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_one_line_per_question_in_the_stable_shape(fixture_index):
    questions = ["語音去噪模型多大？", "混合檢索是怎麼做的", "台北明天會下雨嗎？"]
    result = search_jsonl(fixture_index, questions_jsonl(questions))
    assert result.returncode == 0, result.stderr
    rows = _rows(result)
    assert [r["question"] for r in rows] == questions
    for row in rows:
        assert set(row) == {"question", "answerable", "hits"}
        assert isinstance(row["answerable"], bool)
        assert len(row["hits"]) == 10                                 # the default k
        for hit in row["hits"]:
            assert set(hit) == HIT_KEYS
            assert all(isinstance(hit[k], str) for k in HIT_KEYS - {"score"})
            assert isinstance(hit["score"], float) and hit["score"] > 0
            assert hit["source"] in ("site", "papers")                 # the source's name
            assert not hit["path"].startswith("/") and hit["text"]     # relative to the source folder
    speech = rows[0]["hits"][0]
    assert (speech["source"], speech["path"]) == ("site", "speech.md")
    assert speech["url"] == "https://example.org/speech#語音增強-speech-enhancement"   # page URL + anchor
    assert speech["title"] == "那些語音處理踩的坑" and speech["section"] == "語音增強 (Speech Enhancement)"
    assert "9 MB" in speech["text"]


def test_hits_of_the_folder_with_a_space_keep_the_path_as_written(fixture_index):
    hit = search_one(fixture_index, "DeepKE 可以做什麼")["hits"][0]
    assert (hit["source"], hit["path"]) == ("papers", "NLP Information Extraction/DeepKE.md")
    assert hit["url"].startswith("https://github.com/example/papers/blob/main/NLP%20Information%20Extraction/DeepKE.md#")


def test_bad_lines_get_an_error_object_and_the_rest_is_answered(fixture_index):
    lines = ["{not json", json.dumps({"question": ""}), json.dumps({"question": "   "}),
             json.dumps({"question": "問" * 2001}), json.dumps({"question": 42}), json.dumps(["語音"]),
             json.dumps({"q": "語音"}), "", json.dumps({"question": "混合檢索是怎麼做的"}, ensure_ascii=False),
             json.dumps({"question": "語" * 2000})]                    # exactly the limit: answered
    result = search_jsonl(fixture_index, lines)
    assert result.returncode != 0
    rows = _rows(result)
    assert len(rows) == 9                                              # the blank line is skipped
    errors = {row["line"]: row["error"] for row in rows[:7]}
    assert "not valid JSON" in errors[1]
    assert "empty" in errors[2] and "empty" in errors[3]
    assert "2001 characters" in errors[4] and "limit is 2000" in errors[4]
    assert all("must be text" in errors[n] for n in (5, 6, 7))
    assert all("hits" not in row for row in rows[:7])
    assert rows[7]["question"] == "混合檢索是怎麼做的" and rows[7]["hits"][0]["path"] == "rag.md"
    assert len(rows[8]["hits"]) == 10
    assert "7 line(s) could not be searched" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_line_that_is_not_utf8_is_an_error_for_that_line(fixture_index):
    """Bytes from another encoding must not end the run (or reach the search as surrogates)."""
    data = '{"question": "語音'.encode("big5") + b'"}\n' + '{"question": "混合檢索是怎麼做的"}\n'.encode()
    result = subprocess.run([sys.executable, "-m", "faq_bot", "search", "--jsonl", "--config", str(FIXTURE_CONFIG),
                             "--index", str(fixture_index)], input=data, capture_output=True, cwd=ROOT, timeout=600)
    rows = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]
    assert result.returncode == 1, result.stderr.decode("utf-8", "replace")
    assert rows[0]["line"] == 1 and "not valid UTF-8" in rows[0]["error"]
    assert rows[1]["hits"][0]["path"] == "rag.md"


def test_a_lone_surrogate_escape_is_an_error_for_that_line(fixture_index):
    """'\\ud800' is valid JSON but not text any encoder accepts."""
    result = search_jsonl(fixture_index, ['{"question": "\\ud800 語音"}', *questions_jsonl(["混合檢索是怎麼做的"])])
    rows = _rows(result)
    assert len(rows) == 2 and "hits" in rows[1]
    assert "invalid Unicode" in rows[0]["error"] and rows[0]["question"] == "\ud800 語音"
    assert "Traceback" not in result.stderr


def test_control_characters_are_removed_and_the_question_answered(fixture_index):
    question = "混合\x00檢索\x1b是怎麼\u200b做的\x7f"
    result = search_jsonl(fixture_index, [json.dumps({"question": question})])
    assert result.returncode == 0, result.stderr
    row = _rows(result)[0]
    assert row["question"] == question                                 # echoed as asked
    assert row["answerable"] is True and row["hits"][0]["path"] == "rag.md"


def test_k_sets_the_number_of_hits(fixture_index):
    k = 3
    result = search_jsonl(fixture_index, questions_jsonl(["語音", "混合檢索"]), FIXTURE_CONFIG, "--k", str(k))
    assert result.returncode == 0, result.stderr
    assert [len(row["hits"]) for row in _rows(result)] == [k, k]


@pytest.mark.parametrize("args, message", [
    (["--k", "0", "語音"], "--k must be between 1 and 100"),
    (["--k", "101", "語音"], "--k must be between 1 and 100"),
    ([], "give either one question or --jsonl"),
    (["--jsonl", "語音"], "give either one question or --jsonl"),
])
def test_bad_search_arguments_are_refused(fixture_index, args, message):
    result = run_cli("search", "--config", str(FIXTURE_CONFIG), "--index", str(fixture_index), *args, input="")
    assert result.returncode == 2 and message in result.stderr


def test_empty_stdin_answers_nothing(fixture_index):
    result = search_jsonl(fixture_index, [])
    assert result.returncode == 0 and result.stdout == ""


def test_history_makes_a_follow_up_searchable(fixture_index):
    """An optional "history" per line: the follow-up is searched with the question it continues,
    through the same path as the chat; a history that is not a list is that line's error."""
    lines = [json.dumps({"question": "那它跑得多快？", "history": ["你們做語音去噪最後模型多大？"]}, ensure_ascii=False),
             json.dumps({"question": "那它跑得多快？", "history": "你們做語音去噪最後模型多大？"}, ensure_ascii=False)]
    result = search_jsonl(fixture_index, lines)
    rows = _rows(result)
    assert rows[0]["answerable"] is True and rows[0]["hits"][0]["path"] == "speech.md"
    assert "RTF" in " ".join(h["text"] for h in rows[0]["hits"][:3])
    assert rows[1]["line"] == 2 and '"history" must be a list' in rows[1]["error"]
    assert result.returncode == 1
