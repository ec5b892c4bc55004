"""`faq-bot ingest` as a user drives it: the config file, `--source NAME=PATH`, `--corpus DIR`,
and the errors a user can fix (one line on stderr, exit 2, the index left as it was)."""
from __future__ import annotations

import shutil

import pytest

from helpers import (FIXTURE_CONFIG, FIXTURES, index_copy, live_chunks, run_cli, summary_line, tree_state,
                      write_config)


def _fixture_sources(site=None, papers=None) -> list[dict]:
    return [{"name": "site", "path": str(site or FIXTURES / "site"), "base_url": "https://example.org/",
             "url_rule": "jekyll"},
            {"name": "papers", "path": str(papers or FIXTURES / "papers"),
             "base_url": "https://github.com/example/papers/blob/main/", "url_rule": "github"}]


def _assert_missing_source_error(result, name: str) -> None:
    assert result.returncode == 2, result.stderr
    assert f"source {name!r}" in result.stderr and "folder not found" in result.stderr
    assert f"--source {name}=PATH" in result.stderr and "--corpus DIR" in result.stderr   # how to fix it
    assert "Traceback" not in result.stderr


def test_missing_source_folder_in_the_config_writes_nothing(tmp_path):
    """A typo in a source path must not build a smaller index: exit 2, the index folder not created."""
    config = write_config(tmp_path / "sources.yaml", _fixture_sources(papers=tmp_path / "no-such-folder"))
    index = tmp_path / "index"
    result = run_cli("ingest", "--config", str(config), "--index", str(index))
    _assert_missing_source_error(result, "papers")
    assert not index.exists()
    assert result.stdout == ""


def test_missing_source_folder_leaves_an_existing_index_untouched(tmp_path, fixture_index):
    index = index_copy(fixture_index, tmp_path)
    before = tree_state(index)
    result = run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(index),
                     "--source", f"papers={tmp_path / 'no-such-folder'}")
    _assert_missing_source_error(result, "papers")
    assert tree_state(index) == before


@pytest.mark.parametrize("args, message", [
    (["--source", "nosuch=/tmp"], "no source named 'nosuch'; configured: site, papers"),
    (["--source", "broken"], "expected NAME=PATH"),
    (["--corpus", "/definitely/not/here"], "is not a folder"),
])
def test_bad_command_line_overrides_get_clear_errors(tmp_path, args, message):
    result = run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(tmp_path / "i"), *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "i").exists()


SOURCE = "sources:\n  - name: a\n    path: .\n    base_url: https://x/\n"


@pytest.mark.parametrize("content, message", [
    ("sources: [\n", "cannot parse"),
    ("sources: []\n", "non-empty 'sources' list"),
    ("- just a list\n", "non-empty 'sources' list"),
    (SOURCE + "settings:\n  chunk_size: 3\n", "settings: unknown key 'chunk_size'"),
    (SOURCE + "setings:\n  chunk_max_chars: 100\n", "unknown top-level key(s) ['setings']"),
    (SOURCE + "settings:\n  chunk_max_chars: lots\n", "settings.chunk_max_chars must be"),
    (SOURCE + "settings:\n  embed_backend: word2vec\n", "settings.embed_backend must be one of"),
    (SOURCE + "    url_rule: nope\n", "url_rule must be one of"),
    (SOURCE + "    branch: main\n", "unknown key(s) ['branch']"),
    ("sources:\n  - name: a\n    base_url: https://x/\n", "'path' is required"),
    (SOURCE + SOURCE.replace("sources:\n", ""), "source names must be unique"),
])
def test_malformed_config_files_are_refused_with_the_reason(tmp_path, content, message):
    config = tmp_path / "sources.yaml"
    config.write_text(content, encoding="utf-8")
    result = run_cli("ingest", "--config", str(config), "--index", str(tmp_path / "i"))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "i").exists()


def test_missing_config_file_is_named(tmp_path):
    result = run_cli("ingest", "--config", str(tmp_path / "nope.yaml"), "--index", str(tmp_path / "i"))
    assert result.returncode == 2 and "config file not found" in result.stderr and "nope.yaml" in result.stderr


def test_source_override_reads_that_source_from_another_folder(tmp_path):
    """--source papers=PATH replaces the configured folder of that source only; the page keeps the
    source's URL rule, and its path is relative to the new folder."""
    other = tmp_path / "my papers"
    (other / "sub").mkdir(parents=True)
    (other / "sub" / "moved.md").write_text("# 搬家的論文頁\n\n這一頁只存在於 --source 指向的資料夾。\n", encoding="utf-8")
    index = tmp_path / "index"
    result = run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(index), "--source", f"papers={other}")
    assert "pages added 6" in summary_line(result)
    chunks = live_chunks(index)
    papers = {(c["path"], c["url"]) for c in chunks if c["source"] == "papers"}
    assert papers == {("sub/moved.md", "https://github.com/example/papers/blob/main/sub/moved.md")}
    assert any(c["source"] == "site" and c["path"] == "speech.md" for c in chunks)


def test_corpus_option_reads_every_source_by_its_folder_name(tmp_path):
    """--corpus DIR points each source at DIR/<folder name of its configured path>."""
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "site", corpus / "site")
    (corpus / "papers").mkdir()
    (corpus / "papers" / "only.md").write_text("# 唯一的論文頁\n\n這一頁只存在於 --corpus 的資料夾裡。\n", encoding="utf-8")
    index = tmp_path / "index"
    summary_line(run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(index), "--corpus", str(corpus)))
    paths = {(c["source"], c["path"]) for c in live_chunks(index)}
    assert ("papers", "only.md") in paths and ("site", "speech.md") in paths
    assert ("papers", "README.md") not in paths


def test_corpus_missing_one_source_folder_is_an_error(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "site", corpus / "site")
    result = run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(tmp_path / "i"), "--corpus", str(corpus))
    _assert_missing_source_error(result, "papers")


def test_no_progress_bar_when_stderr_is_not_a_terminal(fixture_ingest):
    """The session ingest ran with stderr captured: a summary on stdout, warnings only on stderr."""
    assert "embedding" not in fixture_ingest.result.stderr and "\r" not in fixture_ingest.result.stderr
    assert fixture_ingest.result.stdout.startswith("indexed 7 pages")
    assert "index: " in fixture_ingest.result.stdout


def test_quiet_prints_only_warnings(tmp_path):
    result = run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(tmp_path / "i"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == ["warning"] * 4
