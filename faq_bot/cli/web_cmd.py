"""`faq-bot serve` (the chat, API and widget) and `faq-bot report` (what visitors asked)."""
from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

from . import common


def _register_serve(sub) -> None:
    p = sub.add_parser("serve", help="run the chat UI, the JSON API and the widget",
                       description="Serves the Gradio chat at /, POST /api/ask, /widget.js and /widget-demo.")
    common.add_config_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--rate-limit", type=int, metavar="N",
                   help="questions per minute per client on /api/ask (default: settings; 0 = no limit)")
    p.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from ..web.server import create_app

    if not 0 < args.port < 65536:
        raise common.ConfigError("--port must be between 1 and 65535")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("faq_bot").setLevel(logging.INFO)      # index switches and failed loads
    app = create_app(common.load(args), rate_limit=args.rate_limit)
    print(f"faq-bot: serving on http://{args.host}:{args.port}/ (widget: /widget.js, demo: /widget-demo)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _register_report(sub) -> None:
    p = sub.add_parser("report", help="summarise the visitor log: top questions, unanswered, feedback",
                       description="Reads the JSON-lines log the web app writes (settings.feedback_log).")
    common.add_config_options(p)
    p.add_argument("--log", metavar="FILE", help="the log file (default: settings.feedback_log)")
    p.add_argument("--top", type=int, default=10, help="how many questions per list (default 10)")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from ..web.feedback import summarize

    path = Path(args.log) if args.log else common.load(args).settings.feedback_log
    if not path.is_file():
        raise common.ConfigError(f"no visitor log at {path} yet: it is written by `faq-bot serve`")
    print(summarize(path, top=args.top).format())
    return 0


COMMANDS = [SimpleNamespace(register=_register_serve), SimpleNamespace(register=_register_report)]
