"""The visitor log: 👍/👎 on answers and every question the bot could not answer, as JSON lines,
so the site owner sees what visitors ask and miss; `faq-bot report` summarises it.

By default the log is one local file (settings.feedback_log). A Space's disk is lost on every restart,
so with settings.feedback_repo (a Hugging Face dataset) each server process writes its own file in a
folder beside it (feedback_log without its suffix: `feedback/visits-<start>-<id>.jsonl`), and
huggingface_hub's CommitScheduler commits that folder to the dataset's `visitor-log/` every few
minutes from a background thread. If the hub cannot be reached the records stay in the local folder.
`faq-bot report` reads a file, a folder of them, or the dataset.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("faq_bot.web")

REPO_FOLDER = "visitor-log"       # where the records go in settings.feedback_repo
REOPEN_CHECK_SECONDS = 2.0        # how often a kept log file is checked against the file at its path


def log_folder(feedback_log: Path) -> Path:
    """The folder a server committing to feedback_repo writes its files in."""
    return Path(feedback_log).with_suffix("")


class FeedbackLog:
    """Appends one JSON object per line; safe to call from several threads."""

    def __init__(self, path: Path, repo: str = "", commit_minutes: float = 5) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file = None
        self._checked = 0.0
        self._scheduler = None
        if repo:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.path = log_folder(path) / f"visits-{stamp}-{uuid.uuid4().hex[:8]}.jsonl"
            threading.Thread(target=self._start_commits, args=(repo, commit_minutes), daemon=True,
                             name="faq-bot-visitor-log").start()

    def _start_commits(self, repo: str, minutes: float) -> None:
        """CommitScheduler creates the dataset if needed, a network call: off the start-up path."""
        try:
            from huggingface_hub import CommitScheduler

            self._scheduler = CommitScheduler(repo_id=repo, repo_type="dataset", folder_path=self.path.parent,
                                              path_in_repo=REPO_FOLDER, every=minutes, private=True,
                                              allow_patterns=["*.jsonl"])
            log.info("committing the visitor log in %s to the dataset %s every %s minutes",
                     self.path.parent, repo, minutes)
        except Exception as exc:  # noqa: BLE001 -- no hub, no token, no rights: keep the local folder
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            log.warning("cannot commit the visitor log to the dataset %s (%s: %s); it stays in %s",
                        repo, type(exc).__name__, first, self.path.parent)

    def _append(self, record: dict) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        scheduler = self._scheduler
        # the scheduler's lock: it never uploads a half-written line
        with self._lock, (scheduler.lock if scheduler is not None else contextlib.nullcontext()):
            f = self._open_file()
            f.write(line)
            f.flush()

    def _open_file(self):
        """The log file, kept open between records (opening it for each one was about a fifth of
        the CPU of an answer served from memory); opened again when the file at `path` is no longer
        the one held (moved or deleted by the site owner), checked at most every few seconds."""
        now = time.monotonic()
        if self._file is not None and now - self._checked < REOPEN_CHECK_SECONDS:
            return self._file
        self._checked = now
        if self._file is not None:
            try:
                if os.stat(self.path).st_ino == os.fstat(self._file.fileno()).st_ino:
                    return self._file
            except OSError:
                pass
            self._file.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        return self._file

    def question(self, question: str, answerable: bool, channel: str) -> None:
        """Every question is counted; unanswered ones are what the owner most wants to see."""
        self._append({"type": "question", "question": question, "answerable": answerable, "channel": channel})

    def rating(self, question: str, liked: bool, answer: str, channel: str) -> None:
        self._append({"type": "feedback", "question": question, "liked": liked,
                      "answer": answer[:500], "channel": channel})


@dataclass
class Report:
    questions: int = 0
    unanswered: int = 0
    likes: int = 0
    dislikes: int = 0
    top_questions: list[tuple[str, int]] = field(default_factory=list)
    top_unanswered: list[tuple[str, int]] = field(default_factory=list)
    disliked: list[tuple[str, int]] = field(default_factory=list)
    bad_lines: int = 0

    def format(self) -> str:
        rated = self.likes + self.dislikes
        ratio = f"{self.likes / rated:.0%} 👍" if rated else "no ratings yet"
        lines = [f"questions: {self.questions}, unanswered: {self.unanswered}"
                 + (f" ({self.unanswered / self.questions:.0%})" if self.questions else ""),
                 f"feedback: {self.likes} 👍 / {self.dislikes} 👎 ({ratio})"]
        for title, rows in (("top questions", self.top_questions), ("top unanswered", self.top_unanswered),
                            ("answers rated 👎", self.disliked)):
            lines.append(f"\n{title}:")
            lines += [f"  {n:>4}  {q}" for q, n in rows] or ["  (none)"]
        if self.bad_lines:
            lines.append(f"\n({self.bad_lines} unreadable line(s) skipped)")
        return "\n".join(lines)


def log_files(*paths: Path) -> list[Path]:
    """The log files among `paths`: a file, or every .jsonl file below a folder (a server's folder,
    or the dataset's copy)."""
    found = []
    for path in map(Path, paths):
        found += sorted(p for p in path.rglob("*.jsonl") if p.is_file()) if path.is_dir() else [path] * path.is_file()
    return found


def download_log(repo: str, into: Path) -> Path:
    """The visitor log committed to the dataset `repo`, downloaded into `into`."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=repo, repo_type="dataset", allow_patterns=[f"{REPO_FOLDER}/*.jsonl"],
                                  local_dir=into))


def _lines(paths: tuple[Path, ...]):
    for file in log_files(*paths):
        with open(file, encoding="utf-8", errors="replace") as f:
            yield from f


def summarize(*paths: Path, top: int = 10) -> Report:
    """Counts from a feedback log (files, or folders of them); unreadable lines are counted, not fatal."""
    report = Report()
    asked, missed, disliked = Counter(), Counter(), Counter()
    with contextlib.closing(_lines(paths)) as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                kind, question = rec["type"], " ".join(str(rec["question"]).split())
            except (json.JSONDecodeError, KeyError, TypeError):
                report.bad_lines += 1
                continue
            if kind == "question":
                report.questions += 1
                asked[question] += 1
                if not rec.get("answerable", True):
                    report.unanswered += 1
                    missed[question] += 1
            elif kind == "feedback":
                if rec.get("liked"):
                    report.likes += 1
                else:
                    report.dislikes += 1
                    disliked[question] += 1
    report.top_questions = asked.most_common(top)
    report.top_unanswered = missed.most_common(top)
    report.disliked = disliked.most_common(top)
    return report
