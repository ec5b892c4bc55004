"""`faq-bot eval QUESTIONS.yaml`: answer and retrieval quality of the current index."""
from __future__ import annotations

import argparse
import json
import sys

from ..eval import evaluate, load_items, page_texts_of, answer_fn, quality_failures
from ..retrieve import Searcher
from . import common


def register(sub) -> None:
    p = sub.add_parser("eval", help="answer@evidence, page@k, evidence@5, MRR@10 and abstention on a question file",
                       description="Questions in the format of eval/dev.yaml: question, kind, and for "
                                   "answerable ones page and evidence.")
    common.add_config_options(p)
    p.add_argument("questions", help="YAML question file")
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    p.add_argument("--mode", choices=("extractive", "llm"), default="extractive",
                   help="extractive: the quoted passages (default); llm: the written answer of settings.llm, "
                        "scored on its text and the passages shown with it")
    p.add_argument("--floor", metavar="METRIC=VALUE", action="append", type=_limit, default=[],
                   help="exit 1 if METRIC is below VALUE, e.g. answer@evidence=0.7 (repeatable)")
    p.add_argument("--ceiling", metavar="METRIC=VALUE", action="append", type=_limit, default=[],
                   help="exit 1 if METRIC is above VALUE, e.g. false_abstention=0.1 (repeatable)")
    p.set_defaults(run=run)


METRIC_NAMES = ("answer@evidence", "page@1", "page@5", "evidence@5", "mrr@10", "false_abstention", "abstention")


def _limit(value: str) -> tuple[str, float]:
    name, sep, number = value.partition("=")
    if name not in METRIC_NAMES:
        raise argparse.ArgumentTypeError(f"unknown metric {name!r}; one of {', '.join(METRIC_NAMES)}")
    try:
        return name, float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected METRIC=NUMBER, got {value!r}") from None


def run(args: argparse.Namespace) -> int:
    items = load_items(args.questions)
    config = common.load(args)
    writer = common.writer(config) if args.mode == "llm" else None
    searcher = Searcher.open(config)
    report = evaluate(answer_fn(searcher, writer=writer), items, page_texts_of(searcher.index.chunks))
    if args.json:
        print(json.dumps({"metrics": report.metrics(), "by_kind": report.by_kind()}, ensure_ascii=False))
    else:
        print(report.format())
    failures = quality_failures(report.metrics(), dict(args.floor), dict(args.ceiling))
    for failure in failures:
        print(f"faq-bot: quality gate: {failure}", file=sys.stderr)
    return 1 if failures else 0
