"""The one asking path of every entry point, in-process: answers from memory are the answers,
keyed on the cleaned question and the follow-up context used, bounded, dropped with the build;
the rate limit; every question logged. (Through HTTP: test_web_api; in a browser: test_web_browser.)"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from helpers import FIXTURE_CONFIG

from faq_bot.answer import answer
from faq_bot.config import load_config, with_overrides
from faq_bot.retrieve import QuestionError
from faq_bot.web.feedback import FeedbackLog
from faq_bot.web.guard import RequestError
from faq_bot.web.live import LiveSearcher
from faq_bot.web.ratelimit import RateLimiter
from faq_bot.web.service import AnswerCache, Asker, RateLimited


@pytest.fixture(scope="module")
def live(tmp_path_factory, fixture_index) -> LiveSearcher:
    index_dir = tmp_path_factory.mktemp("service") / "index"
    shutil.copytree(fixture_index, index_dir)
    return LiveSearcher(with_overrides(load_config(FIXTURE_CONFIG), index_dir=index_dir), check_every=0)


def _asker(live: LiveSearcher, tmp_path: Path, per_minute: int = 0, cache_size: int = 100) -> Asker:
    return Asker(live, RateLimiter(per_minute), FeedbackLog(tmp_path / "log.jsonl"), AnswerCache(cache_size))


def _log(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "log.jsonl").read_text(encoding="utf-8").splitlines()]


def test_a_repeated_question_is_answered_from_memory_exactly_as_anew(live, tmp_path):
    asker = _asker(live, tmp_path)
    first = asker.ask("語音去噪模型多大？", None, "api")
    again = asker.ask(" 語音去噪模型多大？ ", [], "ui")           # the same once cleaned
    assert len(asker.cache) == 1
    assert again.to_dict() == first.to_dict() == answer(live.get(), "語音去噪模型多大？").to_dict()
    assert again.result is None          # kept without the search internals (eval reads them, not the web)
    assert [(r["question"], r["channel"]) for r in _log(tmp_path)] == [("語音去噪模型多大?", "api"),
                                                                      ("語音去噪模型多大?", "ui")]


def test_the_key_is_the_follow_up_context_actually_used(live, tmp_path):
    asker = _asker(live, tmp_path)
    about_rag = asker.ask("那它呢？", ["混合檢索是怎麼做的"], "api")
    about_speech = asker.ask("那它呢？", ["混合檢索是怎麼做的", "語音去噪模型多大？"], "api")
    assert about_rag.citations[0].url.startswith("https://example.org/rag")
    assert about_speech.citations[0].url.startswith("https://example.org/speech")
    # a question that stands alone (not short, no 那/它/呢) uses no context: one entry whatever the history
    asker.ask("等錯誤率 EER 是怎麼定義的", ["語音去噪模型多大？"], "api")
    asker.ask("等錯誤率 EER 是怎麼定義的", ["DeepKE 可以做什麼"], "api")
    assert len(asker.cache) == 3


def test_the_cache_keeps_the_most_recent_answers_within_its_size():
    cache = AnswerCache(size=2)
    build = Path("build-1")
    from faq_bot.answer import Answer

    answers = {q: Answer(question=q, answerable=False, citations=[]) for q in "abc"}
    assert cache.get(build, ("a", None)) is None          # first request on the build
    cache.put(build, ("a", None), answers["a"])
    cache.put(build, ("b", None), answers["b"])
    assert cache.get(build, ("a", None)).question == "a"  # a is now the most recent
    cache.put(build, ("c", None), answers["c"])
    assert len(cache) == 2 and cache.get(build, ("b", None)) is None
    assert cache.get(build, ("a", None)) is not None and cache.get(build, ("c", None)) is not None


def test_the_cache_is_dropped_on_another_build_and_ignores_answers_from_the_old_one():
    from faq_bot.answer import Answer

    cache = AnswerCache(size=10)
    old, new = Path("build-1"), Path("build-2")
    cache.get(old, ("a", None))
    cache.put(old, ("a", None), Answer(question="a", answerable=False, citations=[]))
    assert cache.get(new, ("a", None)) is None and len(cache) == 0
    cache.put(old, ("b", None), Answer(question="b", answerable=False, citations=[]))   # finished late
    assert len(cache) == 0


def test_answers_come_from_the_new_build_after_a_switch(tmp_path, fixture_index):
    index_dir = tmp_path / "index"
    shutil.copytree(fixture_index, index_dir)
    live = LiveSearcher(with_overrides(load_config(FIXTURE_CONFIG), index_dir=index_dir), check_every=0)
    asker = _asker(live, tmp_path)
    asker.ask("混合檢索是怎麼做的", None, "api")
    old = live.build
    assert asker.cache.build == old and len(asker.cache) == 1
    name = "build-99990101-000000-000001"
    shutil.copytree(live.build, index_dir / name)
    (index_dir / "CURRENT").write_text(name + "\n", encoding="utf-8")
    deadline = time.monotonic() + 60
    while live.build.name != name:
        live.get()
        assert time.monotonic() < deadline, "the new build was never loaded"
        time.sleep(0.05)
    asker.ask("語音去噪模型多大？", None, "api")
    # the first request on the new build dropped the old build's answer and kept its own
    assert asker.cache.build == live.build and len(asker.cache) == 1


@pytest.mark.parametrize("question, history, error", [
    ("語音\ud800", None, QuestionError), ("", None, QuestionError), (None, None, QuestionError),
    ("RAG", "not a list", RequestError), ("RAG", [{"role": "user", "content": 1}], RequestError),
])
def test_bad_input_is_refused_before_the_searcher_or_the_log(live, tmp_path, question, history, error):
    asker = _asker(live, tmp_path)
    with pytest.raises(error):
        asker.ask(question, history, "api")
    assert len(asker.cache) == 0 and not (tmp_path / "log.jsonl").exists()


def test_admit_counts_every_entry_point_against_one_budget(live, tmp_path):
    asker = _asker(live, tmp_path, per_minute=2)
    asker.admit("203.0.113.1")
    asker.admit("203.0.113.1")
    with pytest.raises(RateLimited, match=r"too many questions; try again in \d+ s") as caught:
        asker.admit("203.0.113.1")
    assert 1 <= caught.value.retry_after <= 61
    asker.admit("203.0.113.2")                 # another client has its own budget
