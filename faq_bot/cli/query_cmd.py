"""`faq-bot search` (JSON lines, the stable machine interface) and `faq-bot ask` (for people)."""
from __future__ import annotations

import argparse
import json
import sys
from types import SimpleNamespace

from ..answer import answer
from ..retrieve import QuestionError, Searcher
from . import common


def _register_search(sub) -> None:
    p = sub.add_parser("search", help="ranked passages as JSON lines",
                       description='Reads JSON lines {"question": "...", "history": ["earlier question", ...]} '
                                   "(history optional) on stdin (--jsonl) or one question argument, and "
                                   'writes one JSON line per question: {"question", "answerable", "hits": '
                                   '[{"source", "path", "url", "title", "section", "text", "score"}]}. '
                                   '"answerable" is the verdict the chat and the API give.')
    common.add_config_options(p)
    p.add_argument("question", nargs="?", help="one question (instead of --jsonl)")
    p.add_argument("--jsonl", action="store_true", help='read {"question": ...} lines from stdin')
    p.add_argument("--k", type=int, default=10, help="hits per question (default 10)")
    p.set_defaults(run=run_search)


def _emit(obj: dict) -> None:
    # a lone surrogate echoed back (an error row's question) is written as JSON's own \ud800 escape
    line = json.dumps(obj, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _search(searcher: Searcher, question, history, k: int) -> dict:
    reply = answer(searcher, question, history, k=k)
    return {"question": question, "answerable": reply.answerable,
            "hits": [h.to_dict() for h in reply.hits]}


def run_search(args: argparse.Namespace) -> int:
    if args.jsonl == bool(args.question):
        raise QuestionError("give either one question or --jsonl (questions on stdin), not both or neither")
    if not 1 <= args.k <= 100:
        raise QuestionError("--k must be between 1 and 100")
    searcher = Searcher.open(common.load(args))
    if args.question:
        _emit(_search(searcher, args.question, None, args.k))
        return 0
    failures = 0
    # Lines are decoded here, one by one: a line that is not UTF-8 is that line's error, whatever
    # the locale's stdin error handler would do with it (raise, or pass surrogates on).
    for line_no, raw in enumerate(getattr(sys.stdin, "buffer", sys.stdin), 1):
        try:
            line = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            _emit({"line": line_no, "error": f"not valid UTF-8 (byte {exc.start})"})
            failures += 1
            continue
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            _emit({"line": line_no, "error": f"not valid JSON: {exc.msg}"})
            failures += 1
            continue
        question = request.get("question") if isinstance(request, dict) else None
        history = request.get("history") if isinstance(request, dict) else None
        try:
            if history is not None and (not isinstance(history, list)
                                        or not all(isinstance(h, (str, dict, list)) for h in history)):
                raise QuestionError('"history" must be a list of earlier questions or chat messages')
            _emit(_search(searcher, question, history, args.k))
        except QuestionError as exc:
            _emit({"line": line_no, "question": question if isinstance(question, str) else None,
                   "error": str(exc)})
            failures += 1
    if failures:
        print(f"faq-bot: {failures} line(s) could not be searched (see their \"error\")", file=sys.stderr)
    return 1 if failures else 0


def _register_ask(sub) -> None:
    p = sub.add_parser("ask", help="answer a question with cited passages",
                       description="Prints the passages that answer the question with numbered "
                                   "citations, or says the portal does not cover it.")
    common.add_config_options(p)
    p.add_argument("question", help="the question, e.g. 語音去噪模型多大？")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--llm", action="store_true",
                   help="a written answer from settings.llm's endpoint, every sentence checked against the "
                        "passage it cites (the passages follow it)")
    p.set_defaults(run=run_ask)


def run_ask(args: argparse.Namespace) -> int:
    config = common.load(args)
    writer = common.writer(config) if args.llm else None
    searcher = Searcher.open(config)
    result = answer(searcher, args.question)
    if writer is not None:
        result = writer.write(searcher, result)
    if args.json:
        _emit(result.to_dict())
    else:
        print(result.to_text())
    return 0


search = SimpleNamespace(register=_register_search)
ask = SimpleNamespace(register=_register_ask)
