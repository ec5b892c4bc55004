"""The Hugging Face Space entry point: make sure an index exists, then serve the chat, the API
and the widget (port 7860, as Spaces expect)."""
import logging
import os

import uvicorn

from faq_bot.config import load_config
from faq_bot.index import current_build
from faq_bot.ingest import ingest
from faq_bot.sources import clone_missing
from faq_bot.web.server import create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
log = logging.getLogger("faq_bot.app")

config = load_config()
if current_build(config.settings.index_dir) is None:
    log.info("no index in %s: building it from the configured sources (about 10 minutes on 2 CPU cores)",
             config.settings.index_dir)
    clone_missing(config.sources, log=log.info)
    log.info(ingest(config, progress=False, log=log.warning).summary())

app = create_app(config)

if __name__ == "__main__":
    # a Space is reached only through Hugging Face's proxy: trust its X-Forwarded-For for the rate limit
    uvicorn.run(app, host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "7860")),
                forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "*"))
