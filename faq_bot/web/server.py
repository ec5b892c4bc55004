"""One server for everything a visitor touches: the Gradio chat at `/`, `POST /api/ask`,
`/widget.js` and the `/widget-demo` page, on Gradio's FastAPI app."""
from __future__ import annotations

import logging
from importlib import resources

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..config import Config
from ..generate import writer_for
from .api import api_router
from .feedback import FeedbackLog
from .guard import BodyGuard
from .keeper import IndexKeeper
from .live import LiveSearcher
from .ratelimit import RateLimiter
from .service import Asker


log = logging.getLogger("faq_bot.web")


def _static(name: str) -> str:
    return resources.files("faq_bot.web").joinpath("static", name).read_text(encoding="utf-8")


def create_app(config: Config, rate_limit: int | None = None, live: LiveSearcher | None = None,
               keeper: IndexKeeper | None = None) -> FastAPI:
    """The whole web app. `rate_limit` overrides settings.rate_limit_per_minute (0 = off). With no
    index yet, it pulls or builds one in the background (keeper.py) and says so meanwhile."""
    import gradio as gr

    from .ui import build_ui

    settings = config.settings
    if live is None:             # else the caller runs the live searcher (and its keeper)
        live = LiveSearcher(config)
        keeper = IndexKeeper(config, live)
        keeper.start()
    feedback = FeedbackLog(settings.feedback_log, settings.feedback_repo, settings.feedback_commit_minutes)
    limiter = RateLimiter(settings.rate_limit_per_minute if rate_limit is None else rate_limit)
    writer = writer_for(settings)
    if writer is None:
        log.info("answers: quotes from the pages (answer_mode: extractive)")
    else:
        log.info("answers: written by %s", writer.describe())
    asker = Asker(live, limiter, feedback, writer=writer)

    app = FastAPI(title="faq-bot", docs_url=None, redoc_url=None)
    app.add_middleware(BodyGuard)      # inside CORS: a refused body still tells the browser why
    app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                       allow_headers=["Content-Type"], max_age=600)
    app.include_router(api_router(asker))
    widget_js, demo_html = _static("widget.js"), _static("widget-demo.html")

    @app.get("/widget.js")
    def widget() -> Response:
        return Response(widget_js, media_type="application/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=300"})

    @app.get("/widget-demo")
    def widget_demo() -> HTMLResponse:
        return HTMLResponse(demo_html)

    @app.get("/healthz")
    def health() -> JSONResponse:
        """200 while the server answers or is getting its index (with how far it is); 503 once
        getting one has failed."""
        status = live.status()
        return JSONResponse(status.to_dict(), status_code=503 if status.state == "failed" else 200)

    @app.post("/api/index/check")
    def check_index() -> JSONResponse:
        """Look for a new archive at settings.index_url now (the refresh workflow calls this after
        publishing). Harmless to expose: it only makes the server send a conditional request to the
        URL its own config names, at most once a minute (keeper.MIN_CHECK_SECONDS)."""
        if keeper is None or not settings.index_url:
            return JSONResponse({"error": "this server follows no settings.index_url"}, status_code=404)
        keeper.check_soon()
        return JSONResponse({"checking": settings.index_url}, status_code=202)

    blocks = build_ui(asker)
    calm_gradio_queue(blocks)
    return gr.mount_gradio_app(app, blocks, path="/", footer_links=["api"])


# Gradio's event queue looks for new chat events every millisecond when it has none (and for
# progress to report every 10 ms), on the event loop: an idle server spent 54 CPU ms a second on it,
# and under load each look takes the interpreter lock from the threads answering questions. A chat
# event now waits at most this long to start (an answer takes 100 ms or more).
GRADIO_QUEUE_POLL_SECONDS = 0.02
GRADIO_PROGRESS_POLL_SECONDS = 0.1


def calm_gradio_queue(blocks) -> None:
    """Poll Gradio's queue less often (its intervals are attributes of the queue, with no setting)."""
    queue = getattr(blocks, "_queue", None)
    if queue is None or not hasattr(queue, "sleep_when_free"):
        log.warning("this Gradio's queue has no sleep_when_free; its 1-ms polling stays")
        return
    queue.sleep_when_free = max(queue.sleep_when_free, GRADIO_QUEUE_POLL_SECONDS)
    if hasattr(queue, "progress_update_sleep_when_free"):
        queue.progress_update_sleep_when_free = max(queue.progress_update_sleep_when_free,
                                                    GRADIO_PROGRESS_POLL_SECONDS)
