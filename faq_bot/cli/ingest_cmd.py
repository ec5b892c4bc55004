"""`faq-bot ingest`: build or update the index from the configured sources."""
from __future__ import annotations

import argparse
import sys

from ..ingest import ingest
from ..sources import clone_missing
from . import common


def register(sub) -> None:
    p = sub.add_parser("ingest", help="build or update the index from the configured sources",
                       description="Read the sources, clean and chunk the pages, embed what changed, "
                                   "and switch the index to the new build atomically.")
    common.add_config_options(p)
    p.add_argument("--corpus", metavar="DIR",
                   help="a folder holding every source's checkout under its folder name "
                        "(e.g. ../shared/corpus)")
    p.add_argument("--source", metavar="NAME=PATH", action="append", type=common.source_override,
                   default=[], help="read source NAME from PATH (repeatable)")
    p.add_argument("--clone", action="store_true",
                   help="git clone the configured repositories whose folders are missing")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = common.load(args, corpus_dir=args.corpus, source_paths=dict(args.source))
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    warn = lambda msg: print(f"warning: {msg}", file=sys.stderr)  # noqa: E731 - warnings show even with --quiet
    if args.clone:
        clone_missing(config.sources, log=log)
    report = ingest(config, progress=(not args.quiet and sys.stderr.isatty()), log=warn)
    if not args.quiet:
        print(report.summary())
        print(f"index: {report.build_dir}")
    return 0
