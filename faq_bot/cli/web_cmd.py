"""`faq-bot serve` (the chat, API and widget) and `faq-bot report` (what visitors asked)."""
from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

from . import common


def _register_serve(sub) -> None:
    p = sub.add_parser("serve", help="run the chat UI, the JSON API and the widget",
                       description="Serves the Gradio chat at /, POST /api/ask, /widget.js and /widget-demo. "
                                   "With no index it listens at once and pulls settings.index_url, or builds "
                                   "from the sources, in the background.")
    common.add_config_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--rate-limit", type=int, metavar="N",
                   help="questions per minute per client on /api/ask (default: settings; 0 = no limit)")
    p.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from ..web.boot import booting_app

    if not 0 < args.port < 65536:
        raise common.ConfigError("--port must be between 1 and 65535")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("faq_bot").setLevel(logging.INFO)      # index switches and failed loads
    # listens at once; the app (Gradio, the index: pulled or built when there is none) comes up behind it
    app = booting_app(common.load(args), rate_limit=args.rate_limit)
    print(f"faq-bot: serving on http://{args.host}:{args.port}/ (widget: /widget.js, demo: /widget-demo)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _register_report(sub) -> None:
    p = sub.add_parser("report", help="summarise the visitor log: top questions, unanswered, feedback",
                       description="Reads the JSON-lines log the web app writes: settings.feedback_log, or "
                                   "with settings.feedback_repo the log committed to that dataset.")
    common.add_config_options(p)
    p.add_argument("--log", metavar="FILE|FOLDER",
                   help="a log file, or a folder of them (default: settings.feedback_repo's log, else "
                        "settings.feedback_log and the folder beside it)")
    p.add_argument("--top", type=int, default=10, help="how many questions per list (default 10)")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    import tempfile

    from ..web.feedback import download_log, log_files, log_folder, summarize

    if args.log:
        paths = [Path(args.log)]
    else:
        settings = common.load(args).settings
        if settings.feedback_repo:
            with tempfile.TemporaryDirectory(prefix="faq-bot-report-") as tmp:
                try:
                    folder = download_log(settings.feedback_repo, Path(tmp))
                except Exception as exc:  # noqa: BLE001 -- no hub, no token: one line, and the way out
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise common.ConfigError(f"cannot read the visitor log from the dataset {settings.feedback_repo} "
                                             f"({first}); give a local copy with --log FOLDER") from None
                if not log_files(folder):
                    raise common.ConfigError(f"the dataset {settings.feedback_repo} holds no visitor log yet")
                print(summarize(folder, top=args.top).format())
            return 0
        paths = [settings.feedback_log, log_folder(settings.feedback_log)]
    if not log_files(*paths):
        raise common.ConfigError(f"no visitor log at {paths[0]} yet: it is written by `faq-bot serve`")
    print(summarize(*paths, top=args.top).format())
    return 0


COMMANDS = [SimpleNamespace(register=_register_serve), SimpleNamespace(register=_register_report)]
