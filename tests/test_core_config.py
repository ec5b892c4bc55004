"""config: answer_mode and the llm mapping, validated once (the rest of the config is exercised by
every command's tests)."""
from __future__ import annotations

import pytest
from helpers import write_config

from faq_bot.config import ConfigError, LLMSettings, load_config

SOURCE = [{"name": "site", "path": "site", "base_url": "https://example.org/"}]


def _load(tmp_path, settings):
    return load_config(write_config(tmp_path / "sources.yaml", SOURCE, settings)).settings


def test_extractive_is_the_default_and_needs_no_endpoint(tmp_path):
    settings = _load(tmp_path, {})
    assert settings.answer_mode == "extractive" and settings.llm == LLMSettings()


def test_the_llm_mapping_is_read_with_its_types(tmp_path):
    settings = _load(tmp_path, {"answer_mode": "llm", "llm": {
        "base_url": "https://router.huggingface.co/v1", "model": "Qwen/Qwen2.5-7B-Instruct",
        "api_key_env": "HF_TOKEN", "timeout_s": 20, "max_tokens": 200, "temperature": 0.3}})
    assert settings.answer_mode == "llm"
    assert settings.llm == LLMSettings("https://router.huggingface.co/v1", "Qwen/Qwen2.5-7B-Instruct", "HF_TOKEN",
                                       20.0, 200, 0.3)


@pytest.mark.parametrize("settings, message", [
    ({"answer_mode": "generative"}, "answer_mode must be one of"),
    ({"answer_mode": "llm"}, "written answers need settings.llm.base_url and settings.llm.model"),
    ({"answer_mode": "llm", "llm": {"base_url": "http://127.0.0.1:8080/v1"}}, "settings.llm.model"),
    ({"llm": ["base_url"]}, "settings.llm must be a mapping"),
    ({"llm": {"url": "http://x/v1"}}, "unknown key 'url'"),
    ({"llm": {"base_url": "127.0.0.1:8080"}}, "must be an http(s) URL"),
    ({"llm": {"timeout_s": 0}}, "timeout_s must be more than 0"),
    ({"llm": {"timeout_s": "30"}}, "timeout_s must be a float"),
    ({"llm": {"max_tokens": 4}}, "max_tokens must be at least 16"),
    ({"llm": {"temperature": 3}}, "temperature must be between 0 and 2"),
    ({"llm": {"max_tokens": True}}, "max_tokens must be a int"),
])
def test_a_wrong_setting_says_what_to_change(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _load(tmp_path, settings)


@pytest.mark.parametrize("key", ["hf_AbCdEf0123456789secret", "sk-proj-abc123"])
def test_a_key_written_where_its_variable_name_goes_is_refused_without_echoing_it(tmp_path, key):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"llm": {"api_key_env": key}})
    assert "NAME of the environment variable" in str(err.value) and key not in str(err.value)
