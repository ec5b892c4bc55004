"""Where the replies fail: for every answerable question, what the product's reply did with its
evidence, and where retrieval put the passage that holds it. Each session had rebuilt this by hand
to decide what to work on next; the classes sum to the answerable questions:

- shown: the reply (`answer()`, what the chat, API and widget show) holds the evidence phrase;
- refused, evidence read / refused, not read: the policy abstained, with the evidence in one of the
  passages it reads (the first `policy.CANDIDATE_HITS`) or not;
- read, not shown: answered, the evidence in a passage it reads, but not in a quoted snippet;
- ranks 7-10 / 11-20 / 21-N: answered, the evidence first at that rank of the search (ranks past
  10 from one deeper search of the same question, `--deep` passages);
- beyond N: in none of them.

The ceilings below the table are what a reader that always found the evidence (in the passages
read, in the first 10, in the first 20) and never refused a covered question would reach: the room
left for a better quote choice and decision over the same retrieval. They use the stored
calibration, which bench/calibrate.py fits on these same questions by default, so the "shown"
figure is the fit, not a held-out one (calibrate.py reports those).

    python bench/anatomy.py --index bench/out/index                       # the calibration's questions
    python bench/anatomy.py --index DIR --questions bench/questions/beyond-dev-o.yaml --json
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from common import OUT, has_index, log, machine, machine_line, make_config, table, write_json

from faq_bot.answer import answer, searched_question
from faq_bot.eval import EvalItem, load_items
from faq_bot.policy import CANDIDATE_HITS
from faq_bot.retrieve import Searcher
from faq_bot.textproc import eval_key

# The question files bench/calibrate.py fits the policy on (dev.yaml and check sets A-I).
from calibrate import DEFAULT_QUESTIONS  # noqa: E402  (bench/ is on the path when run as a script)

CLASSES = ("shown", "refused, evidence read", "refused, not read", "read, not shown",
           "ranks 7-10", "ranks 11-20", "ranks 21-N", "beyond N")


def evidence_rank(texts: list[str], evidence: str) -> int | None:
    """1-based rank of the first passage text that holds `evidence` (both as `eval_key`s)."""
    return next((rank for rank, text in enumerate(texts, 1) if evidence in eval_key(text)), None)


def classify(answered: bool, shown: bool, rank: int | None, read: int = CANDIDATE_HITS) -> str:
    """One answerable question's class (`CLASSES`), from whether the reply answered and shows the
    evidence, and the evidence's first rank in the search (None: not within the deep search)."""
    if answered and shown:
        return "shown"
    if not answered:
        return "refused, evidence read" if rank is not None and rank <= read else "refused, not read"
    if rank is None:
        return "beyond N"
    if rank <= read:
        return "read, not shown"
    return "ranks 7-10" if rank <= 10 else "ranks 11-20" if rank <= 20 else "ranks 21-N"


def ceilings(counts: Counter, total: int) -> dict[str, float]:
    """answer@evidence of a reader that never missed or refused evidence within the first passages
    it reads, the first 10, or the first 20, over the same retrieval."""
    if not total:
        return {}
    read = counts["shown"] + counts["read, not shown"] + counts["refused, evidence read"]
    return {"now": counts["shown"] / total,
            f"first {CANDIDATE_HITS} read": read / total,
            "first 10": (read + counts["ranks 7-10"]) / total,
            "first 20": (read + counts["ranks 7-10"] + counts["ranks 11-20"]) / total}


def anatomy_of(searcher: Searcher, item: EvalItem, deep: int) -> tuple[str, int | None]:
    """The question's class and its evidence's first rank (None: beyond `deep`)."""
    reply = answer(searcher, item.question, list(item.history))
    evidence = eval_key(item.evidence or "")
    shown = evidence in eval_key(reply.shown_text())
    rank = evidence_rank([h.chunk.text for h in reply.hits], evidence)
    if rank is None:
        question, context = searched_question(item.question, list(item.history))
        deeper = searcher.search(question, k=deep, context=context)
        rank = evidence_rank([h.chunk.text for h in deeper.hits], evidence)
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
              "ceilings": ceilings(total, n),
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
