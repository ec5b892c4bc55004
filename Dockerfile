# faq-bot off Hugging Face: the chat at /, POST /api/ask, /widget.js and /healthz on port 7860.
#
#   docker build -t faq-bot .
#   docker run -d --name faq-bot -p 7860:7860 -v faq-bot-data:/data faq-bot
#
# The index, the visitor log and the source checkouts live on the volume /data, so a new container
# answers at once from the last index. A container with an empty volume listens at once and pulls
# settings.index_url (the archive the refresh workflow publishes), or clones the portal's
# repositories and builds the index (about 20 minutes on 2 cores), saying how far it is meanwhile.
# Behind a reverse proxy, set FORWARDED_ALLOW_IPS to its address so the rate limit sees real clients.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# git: with no index and no index_url, the server clones the sources to build one
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 faq

WORKDIR /app
COPY pyproject.toml README.md ./
COPY faq_bot ./faq_bot
COPY corpus/sources.yaml ./corpus/sources.yaml
RUN pip install .

# The product config with everything that changes moved to /data (the sources, settings.index_url
# and the rest stay as corpus/sources.yaml says). Mount your own file and set FAQ_BOT_CONFIG to use another.
RUN python -c "import yaml; c = yaml.safe_load(open('corpus/sources.yaml', encoding='utf-8')); [s.update(path='/data/repos/' + s['path'].rstrip('/').split('/')[-1]) for s in c['sources']]; c.setdefault('settings', {}).update(index_dir='/data/index', feedback_log='/data/feedback.jsonl'); yaml.safe_dump(c, open('/app/docker-sources.yaml', 'w', encoding='utf-8'), allow_unicode=True, sort_keys=False)"
ENV FAQ_BOT_CONFIG=/app/docker-sources.yaml

RUN mkdir -p /data && chown faq:faq /data
USER faq
VOLUME ["/data"]

EXPOSE 7860
# /healthz answers 200 while the server answers or is getting its index, 503 once that failed
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz', timeout=4)"]
CMD ["faq-bot", "serve", "--host", "0.0.0.0", "--port", "7860"]
