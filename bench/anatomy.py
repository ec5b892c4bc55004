"""Where the replies fail: for every answerable question, what the product's reply did with its
evidence, and where retrieval put the passage that holds it. Each session had rebuilt this by hand
to decide what to work on next; the classes sum to the answerable questions:

- shown: the reply (`answer()`, what the chat, API and widget show) holds the evidence phrase;
- small talk: the message was taken for small talk and not searched;
- refused, evidence read / refused, not read: the policy abstained, with the evidence in one of the
  passages it reads (the first `policy.CANDIDATE_HITS`) or not;
- read, not shown: answered, the evidence in a passage it reads, but not in a quoted snippet;
- ranks 7-10 / 11-20 / 21-N: answered, the evidence first at that rank of the search;
- beyond N: in none of the first N.

A passage "holds" the evidence when its whole text does (a reply may quote any of it; eval.py's
evidence@k reads a hit's first 500 characters). Ranks past the reply's 10 passages come from one
deeper search of the same question (`--deep` passages): it fuses longer candidate lists, so its
order differs a little from the reply's, and evidence it ranks within 10 that the reply's 10 do not
hold counts as rank 11.

The ceilings below the table are what a reader that always found the evidence (in the passages
read, in the first 10, in the first 20) and never refused a covered question would reach: the room
left for a better quote choice and decision over the same retrieval. They use the stored
calibration, which bench/calibrate.py fits on these same questions by default, so the "shown"
figure is the fit, not a held-out one (calibrate.py reports those). The rows are also written to
bench/out/anatomy.json (overwritten by each run).

    python bench/anatomy.py --index bench/out/index                       # the calibration's questions
    python bench/anatomy.py --index DIR --questions bench/questions/beyond-dev-o.yaml --json
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from common import OUT, has_index, log, machine, machine_line, make_config, table, write_json

from faq_bot.answer import SMALL_TALK, answer, searched_question
from faq_bot.eval import EvalItem, load_items
from faq_bot.policy import CANDIDATE_HITS
from faq_bot.retrieve import Searcher
from faq_bot.textproc import eval_key

# The question files bench/calibrate.py fits the policy on (dev.yaml and check sets A-I).
from calibrate import DEFAULT_QUESTIONS  # noqa: E402  (bench/ is on the path when run as a script)


READ_CLASS = f"ranks {CANDIDATE_HITS + 1}-10"
CLASSES = ("shown", "small talk", "refused, evidence read", "refused, not read", "read, not shown",
           READ_CLASS, "ranks 11-20", "ranks 21-N", "beyond N")


def evidence_rank(texts: list[str], evidence: str) -> int | None:
    """1-based rank of the first passage text that holds `evidence` (both as `eval_key`s)."""
    return next((rank for rank, text in enumerate(texts, 1) if evidence in eval_key(text)), None)


def classify(answered: bool, shown: bool, rank: int | None, read: int = CANDIDATE_HITS) -> str:
    """One searched answerable question's class (`CLASSES`), from whether the reply answered and
    shows the evidence, and the evidence's first rank in the search (None: not within the deep search)."""
    if answered and shown:
        return "shown"
    if not answered:
        return "refused, evidence read" if rank is not None and rank <= read else "refused, not read"
    if rank is None:
        return "beyond N"
    if rank <= read:
        return "read, not shown"
    return READ_CLASS if rank <= 10 else "ranks 11-20" if rank <= 20 else "ranks 21-N"


def ceilings(rows: list[dict]) -> dict[str, float]:
    """answer@evidence of a reader that never missed or refused evidence within the first passages
    it reads, the first 10, or the first 20, over the same retrieval (small talk stays a miss)."""
    if not rows:
        return {}

    def reach(depth: int) -> float:
        return sum(r["class"] == "shown" or (r["class"] != "small talk" and r["evidence_rank"] is not None
                                             and r["evidence_rank"] <= depth) for r in rows) / len(rows)
    return {"now": sum(r["class"] == "shown" for r in rows) / len(rows),
            f"first {CANDIDATE_HITS} read": reach(CANDIDATE_HITS), "first 10": reach(10), "first 20": reach(20)}


def anatomy_of(searcher: Searcher, item: EvalItem, deep: int) -> tuple[str, int | None]:
    """The question's class and its evidence's first rank (None: beyond `deep`)."""
    reply = answer(searcher, item.question, list(item.history))
    if reply.mode == SMALL_TALK:
        return "small talk", None
    evidence = eval_key(item.evidence or "")
    shown = evidence in eval_key(reply.shown_text())
    rank = evidence_rank([h.chunk.text for h in reply.hits], evidence)
    if rank is None:
        question, context = searched_question(item.question, list(item.history))
        deeper = searcher.search(question, k=deep, context=context)
        rank = evidence_rank([h.chunk.text for h in deeper.hits], evidence)
        if rank is not None:          # the reply's passages do not hold it, whatever the deeper order says
            rank = max(rank, len(reply.hits) + 1)
    return classify(reply.answerable, shown, rank), rank


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", metavar="DIR", default=str(OUT / "index"), help="product index (default bench/out/index)")
    parser.add_argument("--config", metavar="FILE", help="product config (default corpus/sources.yaml)")
    parser.add_argument("--questions", metavar="FILE", nargs="+", default=DEFAULT_QUESTIONS,
                        help="question files (default: the files bench/calibrate.py fits on)")
    parser.add_argument("--deep", type=int, default=100, metavar="N", help="passages searched past the first 10 (default 100)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    args = parser.parse_args()
    if args.deep < 20:
        parser.error("--deep must be at least 20")
    if not has_index(args.index):
        parser.error(f"--index {args.index}: no index there (run `faq-bot ingest --index {args.index}`)")

    info = machine()
    searcher = Searcher.open(make_config(args.config, index=Path(args.index)))
    by_file: dict[str, Counter] = {}
    by_kind: dict[str, Counter] = {}
    rows = []
    for path in args.questions:
        name = Path(path).name
        items = [i for i in load_items(path) if i.answerable]
        log(f"{name}: {len(items)} answerable questions")
        for item in items:
            cls, rank = anatomy_of(searcher, item, args.deep)
            by_file.setdefault(name, Counter())[cls] += 1
            by_kind.setdefault(item.kind, Counter())[cls] += 1
            rows.append({"file": name, "kind": item.kind, "question": item.question, "class": cls, "evidence_rank": rank})
    total = Counter()
    for counts in by_file.values():
        total.update(counts)
    n = sum(total.values())
    result = {"machine": info, "deep": args.deep, "answerable": n, "classes": {c: total[c] for c in CLASSES},
              "ceilings": ceilings(rows),
              "by_file": {f: dict(c) for f, c in by_file.items()}, "by_kind": {k: dict(c) for k, c in by_kind.items()},
              "questions": rows}
    write_json(OUT / "anatomy.json", result)
    if args.json:
        import json
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0
    print(machine_line(info))
    headers = ["", "n", *(c.replace("N", str(args.deep)) for c in CLASSES)]
    groups = [*by_file.items(), *sorted(by_kind.items()), ("all", total)]
    print(table(headers, [[name, sum(c.values()), *(c[k] for k in CLASSES)] for name, c in groups]))
    print("answer@evidence now, and of a reader that never misses or refuses evidence within: "
          + "; ".join(f"{k} {v:.3f}" for k, v in result["ceilings"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
