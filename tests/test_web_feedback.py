"""The visitor log when settings.feedback_repo names a Hugging Face dataset: each server writes its own
file in the folder huggingface_hub's CommitScheduler commits (the hub is out of reach here, so the
records must stay there and the server must keep answering), and `faq-bot report` reads that folder,
a copy of the dataset's, or says in one line why it cannot read the dataset."""
from __future__ import annotations

import json

from helpers import free_port, http_json, run_cli, start_empty_server, wait_for_health, write_config

DEAD_HUB = {"HF_TOKEN": "hf_test", "HF_HUB_DISABLE_TELEMETRY": "1"}


def test_with_a_feedback_repo_each_server_logs_into_the_committed_folder(tmp_path, fixture_archive, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")     # a hub that is not there
    for key, value in DEAD_HUB.items():
        monkeypatch.setenv(key, value)
    proc, url, server_log = start_empty_server(tmp_path, {"index_url": str(fixture_archive),
                                                          "feedback_repo": "someone/faq-bot-visits"})
    try:
        wait_for_health(url, proc, lambda s: s["state"] == "ready")
        for question in ("怎麼做紅燒肉最好吃？", "怎麼做紅燒肉最好吃？", "混合檢索是怎麼做的"):
            assert http_json(url + "/api/ask", {"question": question})[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    folder = tmp_path / "feedback"                      # feedback_log feedback.jsonl without its suffix
    files = list(folder.glob("visits-*.jsonl"))
    assert len(files) == 1 and not (tmp_path / "feedback.jsonl").exists()
    records = [json.loads(line) for line in files[0].read_text(encoding="utf-8").splitlines()]
    assert [r["question"] for r in records] == ["怎麼做紅燒肉最好吃?", "怎麼做紅燒肉最好吃?", "混合檢索是怎麼做的"]
    assert "cannot commit the visitor log to the dataset someone/faq-bot-visits" in server_log.read_text(encoding="utf-8")

    report = run_cli("report", "--log", str(folder))
    assert report.returncode == 0, report.stderr
    assert "questions: 3, unanswered: 2" in report.stdout and "2  怎麼做紅燒肉最好吃?" in report.stdout

    # the dataset itself cannot be read from here: one line saying so, and the way out
    config = tmp_path / "sources.yaml"
    offline = run_cli("report", "--config", str(config))
    assert offline.returncode == 2
    assert "cannot read the visitor log from the dataset someone/faq-bot-visits" in offline.stderr
    assert "--log FOLDER" in offline.stderr and len(offline.stderr.strip().splitlines()) == 1


def test_report_reads_the_dataset_layout_and_a_local_file_together(tmp_path):
    """Two server processes' files under visitor-log/ (as snapshot_download lays out the dataset),
    and the local file of a server that ran before feedback_repo was set: all are counted."""
    def record(question, answerable=True, **extra):
        return json.dumps({"type": "question", "question": question, "answerable": answerable, **extra},
                          ensure_ascii=False) + "\n"

    dataset = tmp_path / "feedback" / "visitor-log"
    dataset.mkdir(parents=True)
    (dataset / "visits-20261201-010000-aaaa.jsonl").write_text(record("RAG 是什麼") + record("護照", False), encoding="utf-8")
    (dataset / "visits-20261201-020000-bbbb.jsonl").write_text(
        record("RAG 是什麼") + "{broken\n" + json.dumps({"type": "feedback", "question": "RAG 是什麼", "liked": True}) + "\n",
        encoding="utf-8")
    (tmp_path / "feedback.jsonl").write_text(record("護照", False), encoding="utf-8")
    config = write_config(tmp_path / "sources.yaml", [{"name": "s", "path": str(tmp_path), "base_url": "https://x/"}],
                          {"feedback_log": str(tmp_path / "feedback.jsonl")})
    report = run_cli("report", "--config", str(config))
    assert report.returncode == 0, report.stderr
    assert "questions: 4, unanswered: 2" in report.stdout and "feedback: 1 👍 / 0 👎" in report.stdout
    assert "2  護照" in report.stdout.split("top unanswered:")[1] and "(1 unreadable line(s) skipped)" in report.stdout


def test_the_log_file_is_kept_open_readable_at_once_and_reopened_when_moved_away(tmp_path, monkeypatch):
    from faq_bot.web import feedback as feedback_module
    from faq_bot.web.feedback import FeedbackLog

    monkeypatch.setattr(feedback_module, "REOPEN_CHECK_SECONDS", 0.0)
    path = tmp_path / "logs" / "feedback.jsonl"
    log = FeedbackLog(path)
    log.question("語音去噪模型多大？", True, channel="api")
    log.question("怎麼申請台灣護照？", False, channel="api")
    assert [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines()] == [
        "語音去噪模型多大？", "怎麼申請台灣護照？"]               # flushed: a reader sees every record at once
    rotated = tmp_path / "logs" / "feedback-old.jsonl"
    path.rename(rotated)                                     # the site owner moves the log aside
    log.question("混合檢索是怎麼做的", True, channel="ui")
    assert len(rotated.read_text(encoding="utf-8").splitlines()) == 2
    assert json.loads(path.read_text(encoding="utf-8"))["question"] == "混合檢索是怎麼做的"
    path.unlink()                                            # or deletes it
    log.rating("混合檢索是怎麼做的", True, "RRF", channel="ui")
    assert json.loads(path.read_text(encoding="utf-8"))["type"] == "feedback"
