"""`faq-bot eval QUESTIONS.yaml`: answer and retrieval quality of the current index."""
from __future__ import annotations

import argparse
import json

from ..eval import evaluate, load_items, page_texts_of, answer_fn
from ..retrieve import Searcher
from . import common


def register(sub) -> None:
    p = sub.add_parser("eval", help="answer@evidence, page@k, evidence@5, MRR@10 and abstention on a question file",
                       description="Questions in the format of eval/dev.yaml: question, kind, and for "
                                   "answerable ones page and evidence.")
    common.add_config_options(p)
    p.add_argument("questions", help="YAML question file")
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    items = load_items(args.questions)
    searcher = Searcher.open(common.load(args))
    report = evaluate(answer_fn(searcher), items, page_texts_of(searcher.index.chunks))
    if args.json:
        print(json.dumps({"metrics": report.metrics(), "by_kind": report.by_kind()}, ensure_ascii=False))
    else:
        print(report.format())
    return 0
