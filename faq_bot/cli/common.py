"""What every sub-command shares: the config options and the errors shown as one line."""
from __future__ import annotations

import argparse

from ..config import Config, ConfigError, check_llm, load_config, with_overrides
from ..embed import EmbedderError
from ..eval import EvalFileError
from ..index import IndexLoadError
from ..retrieve import QuestionError

# Errors a user can fix: printed as one line with the fix, no traceback.
USER_ERRORS = (ConfigError, IndexLoadError, EmbedderError, QuestionError, EvalFileError)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="sources and settings (default: $FAQ_BOT_CONFIG or corpus/sources.yaml)")
    parser.add_argument("--index", metavar="DIR", help="index folder (default: settings.index_dir)")


def load(args: argparse.Namespace, **overrides) -> Config:
    config = load_config(args.config)
    return with_overrides(config, index_dir=args.index, **overrides)


def source_override(value: str) -> tuple[str, str]:
    """argparse type for NAME=PATH."""
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, path


def writer(config: Config):
    """The LLM writer of settings.llm, whatever settings.answer_mode says (`ask --llm`,
    `eval --mode llm`); ConfigError when no endpoint is configured."""
    from ..generate import Writer

    check_llm(config.settings.llm)
    return Writer(config.settings.llm)
