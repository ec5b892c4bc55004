"""`faq-bot ask`, the answer a person reads: quoted passages with numbered citations to the page
and section, or an honest "not found" with the closest pages; bad questions refused clearly."""
from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest

from helpers import FIXTURE_CONFIG, run_cli


def _ask(index, question: str, *extra: str):
    return run_cli("ask", "--config", str(FIXTURE_CONFIG), "--index", str(index), *extra, question)


def test_answer_quotes_passages_with_numbered_citations(fixture_index):
    result = _ask(fixture_index, "你們做語音去噪最後模型多大？")
    assert result.returncode == 0, result.stderr
    body, _, sources = result.stdout.partition("\n\n")
    assert "9 MB" in body and "RTF 是 0.08" in body
    cited = re.findall(r"\[(\d+)\]$", body, re.M)                       # each passage ends with its number
    listed = re.findall(r"^\[(\d+)\] ", sources, re.M)
    assert cited and cited == listed == [str(n) for n in range(1, len(cited) + 1)]
    # [1] names the page title and section, then the link to that section, with a text fragment that
    # highlights the quoted sentence
    link = re.search(r"^\[1\] 那些語音處理踩的坑 › 語音增強 \(Speech Enhancement\)\n"
                     r"    https://example\.org/speech#語音增強-speech-enhancement:~:text=(\S+)$", sources, re.M)
    assert link, sources
    quoted = [unquote(part) for part in link.group(1).split(",")]
    assert all(part and part in body for part in quoted), (quoted, body)


def test_not_found_says_so_and_suggests_the_closest_pages(fixture_index):
    result = _ask(fixture_index, "怎麼申請台灣護照？")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Not found in the portal")
    assert lines[1] == "Closest pages:"
    links = [line.strip() for line in lines[2:] if line.strip().startswith("https://")]
    assert 1 <= len(links) <= 3
    assert "[1]" not in result.stdout                                    # nothing is cited as an answer


def test_json_answer_has_citations_and_escaped_markdown(fixture_index):
    """Page text that looks like markup is escaped in the Markdown the web layer renders."""
    result = _ask(fixture_index, "閱讀理解模型用什麼微調？corpus-xss", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"question", "answerable", "mode", "text", "note", "answer_markdown", "citations", "suggestions"}
    assert answer["mode"] == "extractive" and answer["text"] == "" and answer["note"] == ""
    items = answer["citations"] or answer["suggestions"]
    assert items and all(set(c) == {"n", "title", "section", "url", "snippet"} for c in items)
    assert any("corpus-xss" in c["snippet"] for c in items)
    assert "<script>" not in answer["answer_markdown"]


def test_control_characters_in_a_question_are_removed(fixture_index):
    result = _ask(fixture_index, "你們做語音去噪\x07最後模型\u200b多大？\x1b")
    assert result.returncode == 0, result.stderr
    assert "https://example.org/speech#語音增強-speech-enhancement" in result.stdout


def test_small_talk_gets_a_reply_in_kind_and_courtesy_does_not_change_the_answer(fixture_index):
    result = _ask(fixture_index, "你好")
    assert result.returncode == 0, result.stderr
    assert "Deep Learning 101" in result.stdout and "Not found" not in result.stdout
    assert "https://" not in result.stdout                              # nothing searched, nothing cited
    reply = json.loads(_ask(fixture_index, "Thanks!", "--json").stdout)
    assert reply["mode"] == "small_talk" and reply["answerable"] is False
    assert reply["text"].startswith("不客氣") and reply["citations"] == reply["suggestions"] == []
    # a greeting before a question is not searched: the same answer as the question alone
    plain = _ask(fixture_index, "你們做語音去噪最後模型多大？").stdout
    assert _ask(fixture_index, "你好，請問你們做語音去噪最後模型多大？謝謝！").stdout == plain


@pytest.mark.parametrize("question, message", [
    ("", "the question is empty"),
    (" \t ", "the question is empty"),
    ("？？", "the question has no words, only marks"),
    ("問" * 2001, "2001 characters long; the limit is 2000"),
])
def test_bad_questions_are_refused_with_the_reason(fixture_index, question, message):
    result = _ask(fixture_index, question)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


# ---------------------------------------------------------------- written answers (--llm)

def _llm_config(tmp_path, base_url: str, model: str):
    from helpers import FIXTURES, llm_settings, write_config

    return write_config(tmp_path / "sources.yaml", [
        {"name": "site", "path": str(FIXTURES / "site"), "base_url": "https://example.org/", "url_rule": "jekyll"},
        {"name": "papers", "path": str(FIXTURES / "papers"), "base_url": "https://github.com/example/papers/blob/main/",
         "url_rule": "github"}], {"boilerplate_min_pages": 4, **llm_settings(base_url, model)})


@pytest.mark.llm
def test_ask_llm_writes_the_answer_over_its_passages(fixture_index, local_llm, tmp_path):
    config = _llm_config(tmp_path, local_llm.base_url, local_llm.model)
    result = run_cli("ask", "--config", str(config), "--index", str(fixture_index), "--llm", "--json",
                     "聲紋辨識的等錯誤率是怎麼定義的？")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answerable"] and data["citations"] and data["note"] == ""
    if data["mode"] == "generated":           # the written text, then the passages it rests on
        assert data["text"] and re.search(r"\[\d\]", data["text"])
        assert data["answer_markdown"].index("引用段落") > data["answer_markdown"].index(data["text"][:4])
    else:
        assert data["mode"] == "extractive" and data["text"] == ""
    text = run_cli("ask", "--config", str(config), "--index", str(fixture_index), "--llm", "怎麼申請台灣護照？")
    assert text.returncode == 0 and "Not found in the portal" in text.stdout


def test_ask_llm_without_an_endpoint_says_what_to_configure(fixture_index):
    result = _ask(fixture_index, "你們做語音去噪最後模型多大？", "--llm")
    assert result.returncode == 2
    assert "written answers need settings.llm.base_url and settings.llm.model" in result.stderr
    assert "Traceback" not in result.stderr


def test_ask_llm_with_the_endpoint_down_still_answers(fixture_index, tmp_path):
    from helpers import free_port

    config = _llm_config(tmp_path, f"http://127.0.0.1:{free_port()}/v1", "m")
    result = run_cli("ask", "--config", str(config), "--index", str(fixture_index), "--llm", "你們做語音去噪最後模型多大？")
    assert result.returncode == 0, result.stderr
    assert "Written answer unavailable" in result.stdout and "9 MB" in result.stdout
