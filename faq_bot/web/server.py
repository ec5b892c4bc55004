"""One server for everything a visitor touches: the Gradio chat at `/`, `POST /api/ask`,
`/widget.js` and the `/widget-demo` page, on Gradio's FastAPI app."""
from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from ..config import Config
from .api import api_router
from .feedback import FeedbackLog
from .live import LiveSearcher
from .ratelimit import RateLimiter


def _static(name: str) -> str:
    return resources.files("faq_bot.web").joinpath("static", name).read_text(encoding="utf-8")


def create_app(config: Config, rate_limit: int | None = None, live: LiveSearcher | None = None) -> FastAPI:
    """The whole web app. `rate_limit` overrides settings.rate_limit_per_minute (0 = off)."""
    import gradio as gr

    from .ui import build_ui

    settings = config.settings
    live = live or LiveSearcher(config)
    feedback = FeedbackLog(settings.feedback_log)
    limiter = RateLimiter(settings.rate_limit_per_minute if rate_limit is None else rate_limit)

    app = FastAPI(title="faq-bot", docs_url=None, redoc_url=None)
    app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                       allow_headers=["Content-Type"], max_age=600)
    app.include_router(api_router(live, limiter, feedback))
    widget_js, demo_html = _static("widget.js"), _static("widget-demo.html")

    @app.get("/widget.js")
    def widget() -> Response:
        return Response(widget_js, media_type="application/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=300"})

    @app.get("/widget-demo")
    def widget_demo() -> HTMLResponse:
        return HTMLResponse(demo_html)

    @app.get("/healthz")
    def health() -> PlainTextResponse:
        return PlainTextResponse(f"ok {live.build.name}")

    return gr.mount_gradio_app(app, build_ui(live, feedback), path="/", footer_links=["api"])
