"""The visitor log: 👍/👎 on answers and every question the bot could not answer, as JSON lines,
so the site owner sees what visitors ask and miss; `faq-bot report` summarises it."""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


class FeedbackLog:
    """Appends one JSON object per line; safe to call from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _append(self, record: dict) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)

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


def summarize(path: Path, top: int = 10) -> Report:
    """Counts from a feedback log; unreadable lines are counted, not fatal."""
    report = Report()
    asked, missed, disliked = Counter(), Counter(), Counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
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
