"""The Hugging Face Space entry point: serve the chat, the API and the widget on port 7860 at once.

With no index (a Space's disk is not kept across restarts), the server pulls settings.index_url in the
background, or builds from the configured sources when none is set, and answers meanwhile with what
it is doing (faq_bot/web/keeper.py, boot.py).
"""
import logging
import os

import uvicorn

from faq_bot.config import load_config
from faq_bot.web.boot import booting_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
app = booting_app(load_config())

if __name__ == "__main__":
    # a Space is reached only through Hugging Face's proxy: trust its X-Forwarded-For for the rate limit
    uvicorn.run(app, host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "7860")),
                forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "*"))
