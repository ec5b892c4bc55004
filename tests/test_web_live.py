"""The live searcher in-process: a damaged new build never replaces the one being served, a good one
does, and asking while a build loads is answered from the old one."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest
from helpers import FIXTURE_CONFIG

from faq_bot.answer import answer
from faq_bot.config import load_config, with_overrides
from faq_bot.web import live as live_module
from faq_bot.web.live import LiveSearcher, release_memory


def _wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture()
def live_index(tmp_path, fixture_index):
    index_dir = tmp_path / "index"
    shutil.copytree(fixture_index, index_dir)
    config = with_overrides(load_config(FIXTURE_CONFIG), index_dir=index_dir)
    return index_dir, LiveSearcher(config, check_every=0)


def _point_current_at(index_dir, source_build, name: str, damage: bool = False):
    build = index_dir / name
    shutil.copytree(source_build, build)
    if damage:
        (build / "chunks.jsonl").write_text("{not a chunk\n", encoding="utf-8")
    (index_dir / "CURRENT").write_text(name + "\n", encoding="utf-8")
    return build


def test_a_damaged_build_is_logged_and_the_old_one_keeps_answering(live_index, caplog):
    index_dir, live = live_index
    served = live.build
    _point_current_at(index_dir, served, "build-99990101-000000-000000", damage=True)
    with caplog.at_level(logging.WARNING, logger="faq_bot.web"):
        searcher = live.get()                       # notices the new build, loads it in the background
        assert searcher.index.build_dir == served
        _wait_for(lambda: "could not load the new index build" in caplog.text, "the failed load to be logged")
        result = answer(live.get(), "語音去噪模型多大？")
    assert live.build == served and live.reloads == 0
    assert result.answerable and "9 MB" in result.to_dict()["answer_markdown"]
    live.get()                                      # the same damaged build is not retried
    time.sleep(0.2)
    assert caplog.text.count("could not load the new index build") == 1


def test_a_good_build_replaces_the_served_one_without_failing_requests(live_index):
    index_dir, live = live_index
    old = live.build
    new = _point_current_at(index_dir, old, "build-99990101-000000-000001")
    results = []
    while live.build != new:
        results.append(answer(live.get(), "混合檢索是怎麼做的").answerable)
        assert len(results) < 10_000, "the new build was never loaded"
    assert live.reloads == 1 and all(results)
    assert live.get().index.build_dir == new
    assert answer(live.get(), "混合檢索是怎麼做的").citations[0].url.startswith("https://example.org/rag")


def test_starts_without_an_index_says_why_and_answers_once_one_is_installed(tmp_path, fixture_index):
    from faq_bot.web.live import IndexNotReady

    index_dir = tmp_path / "index"
    live = LiveSearcher(with_overrides(load_config(FIXTURE_CONFIG), index_dir=index_dir), check_every=0)
    assert live.build is None and live.status().state == "starting"
    live.set_status("building", 0.42, "embedding 42/100")
    with pytest.raises(IndexNotReady) as refused:
        live.get()
    assert str(refused.value) == "正在建立索引… 42%" and refused.value.status.retry_after >= 1
    assert live.load_now() is False                     # nothing installed yet
    shutil.copytree(fixture_index, index_dir)
    assert live.load_now() is True and live.status().ready and live.status().build == live.build.name
    assert answer(live.get(), "語音去噪模型多大？").answerable


def test_an_unreadable_current_does_not_stop_later_reloads(live_index, caplog):
    """CURRENT holding bytes that are not UTF-8 (a UnicodeDecodeError, not an OSError) used to
    leave the reload lock held: the server never picked up a build again."""
    index_dir, live = live_index
    old = live.build
    (index_dir / "CURRENT").write_bytes(b"build-\xff\xfe\n")
    with caplog.at_level(logging.WARNING, logger="faq_bot.web"):
        assert live.get().index.build_dir == old
    assert "could not read" in caplog.text and "CURRENT" in caplog.text
    new = _point_current_at(index_dir, old, "build-99990101-000000-000002")
    _wait_for(lambda: live.get().index.build_dir == new, "the next good build to be loaded")
    assert live.reloads == 1


def _current_moves_on_while_loading(monkeypatch, index_dir: Path, to: Path) -> None:
    """CURRENT names `to` as soon as a build starts loading (an ingest that finished meanwhile),
    whichever way the build is loaded."""
    from faq_bot import index as index_module

    real = index_module.load_build

    def loading(build, *args, **kwargs):
        (index_dir / "CURRENT").write_text(to.name + "\n", encoding="utf-8")
        return real(build, *args, **kwargs)

    monkeypatch.setattr(index_module, "load_build", loading)
    monkeypatch.setattr(live_module, "load_build", loading)


def test_the_build_that_failed_is_the_one_recorded(live_index, caplog, monkeypatch):
    """Recorded against the build that was loaded, not against what CURRENT names once it failed:
    a good build installed meanwhile is then loaded, not skipped as the failed one."""
    index_dir, live = live_index
    served = live.build
    damaged = _point_current_at(index_dir, served, "build-99990101-000000-000003", damage=True)
    newer = index_dir / "build-99990101-000000-000004"
    shutil.copytree(served, newer)
    _current_moves_on_while_loading(monkeypatch, index_dir, newer)
    with caplog.at_level(logging.WARNING, logger="faq_bot.web"):
        live.get()
        _wait_for(lambda: live.failed is not None, "the failed load to be recorded")
    assert live.failed == damaged and live.build == served
    assert damaged.name in caplog.text
    _wait_for(lambda: live.get().index.build_dir == newer, "the newer build to be served")


def test_a_build_that_fails_at_start_is_the_one_recorded(tmp_path, fixture_index, monkeypatch):
    """The same when the server starts on a damaged build and an ingest finishes while it loads."""
    index_dir = tmp_path / "index"
    shutil.copytree(fixture_index, index_dir)
    good = index_dir / (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    damaged = _point_current_at(index_dir, good, "build-99990101-000000-000005", damage=True)
    newer = index_dir / "build-99990101-000000-000006"
    shutil.copytree(good, newer)
    _current_moves_on_while_loading(monkeypatch, index_dir, newer)
    live = LiveSearcher(with_overrides(load_config(FIXTURE_CONFIG), index_dir=index_dir), check_every=0)
    assert live.failed == damaged and live.build is None
    _wait_for(lambda: live.load_now(), "the newer build to load")
    assert live.get().index.build_dir == newer


def test_a_switch_hands_the_old_builds_memory_back_once_requests_are_done(live_index, monkeypatch):
    released = []
    monkeypatch.setattr(live_module, "RELEASE_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(live_module, "release_memory", lambda: released.append(time.monotonic()))
    index_dir, live = live_index
    new = _point_current_at(index_dir, live.build, "build-99990101-000000-000002")
    _wait_for(lambda: live.get().index.build_dir == new, "the new build to be served")
    _wait_for(lambda: released, "the memory of the old build to be released")
    assert len(released) == 1


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident set from /proc")
def test_release_memory_returns_a_fragmented_heap_to_the_system():
    """What a freed index leaves: most small blocks freed, a few kept between them, so the heap's
    top never empties and glibc keeps the pages until malloc_trim."""
    blocks = [bytes(1000) for _ in range(120_000)]          # ~120 MB of heap blocks
    kept = blocks[::64]
    del blocks
    before = _rss_mb()
    release_memory()
    after = _rss_mb()
    assert len(kept) == 1875 and before - after > 60, (before, after)
