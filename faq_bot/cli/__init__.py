"""The `faq-bot` command. Each sub-command lives in its own module with `register` and `run`."""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import common, eval_cmd, index_cmd, ingest_cmd, query_cmd, web_cmd

COMMANDS = [ingest_cmd, index_cmd, query_cmd.search, query_cmd.ask, eval_cmd, *web_cmd.COMMANDS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faq-bot",
        description="Answers questions about the Deep Learning 101 portal with cited links.")
    parser.add_argument("--version", action="version", version=f"faq-bot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("faq-bot: interrupted; the index was left as it was", file=sys.stderr)
        return 130
    except common.USER_ERRORS as exc:
        print(f"faq-bot: error: {exc}", file=sys.stderr)
        return 2
