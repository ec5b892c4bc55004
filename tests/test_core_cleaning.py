"""What `faq-bot ingest` keeps of each page of the fixture site: bad files skipped by name, site
boilerplate once, visible text only, titles, anchors, URLs, and heading-aware chunks cut at
sentence ends. Read from the live build's chunks.jsonl, as the index holds it."""
from __future__ import annotations

import re

import pytest

from helpers import live_chunks, run_cli, write_config


@pytest.fixture(scope="module")
def chunks(fixture_index) -> list[dict]:
    return live_chunks(fixture_index)


@pytest.mark.parametrize("name, reason", [
    ("legacy-big5.md", "not UTF-8"),
    ("image.md", "binary file"),
    ("empty.md", "empty file"),
    ("broken-front-matter.md", "malformed front matter"),
])
def test_each_bad_file_is_warned_by_name_and_skipped(fixture_ingest, chunks, name, reason):
    """Big5, binary, empty and malformed files never abort the ingest, and the user learns which."""
    assert fixture_ingest.result.returncode == 0
    assert re.search(rf"^warning: skipped site/{re.escape(name)}: {reason}", fixture_ingest.result.stderr, re.M)
    assert not any(c["path"] == name for c in chunks)


def test_ingest_summary_counts_the_skipped_files(fixture_ingest):
    assert "4 file(s) skipped" in fixture_ingest.result.stdout
    assert "Traceback" not in fixture_ingest.result.stderr


def test_every_readable_page_is_indexed(chunks):
    """Including HTML and the file in a folder whose name has a space."""
    assert {(c["source"], c["path"]) for c in chunks} == {
        ("site", "index.md"), ("site", "speech.md"), ("site", "gpu.md"), ("site", "rag.md"),
        ("site", "html/talk.html"), ("papers", "NLP Information Extraction/DeepKE.md"), ("papers", "README.md")}


@pytest.mark.parametrize("phrase", ["學習是一條漫長的旅程", "本站由社群志工維護", "手把手帶你安裝 CUDA", "近期文章"])
def test_boilerplate_is_indexed_in_exactly_one_chunk(chunks, phrase):
    """The intro, link table and post list stand on 5 pages; one chunk (on the home page) keeps them."""
    holders = [(c["path"], c["section"]) for c in chunks if phrase in c["text"]]
    assert len(holders) == 1, holders
    assert holders[0][0] == "index.md"


def test_only_visible_text_is_indexed(chunks):
    """No script, CSS, navigation, hidden element or footer text reaches any chunk."""
    text = "\n".join(c["text"] + c["title"] + c["section"] for c in chunks)
    for marker in ("SCRIPT_TEXT_MUST_NOT_BE_INDEXED", "NAV_TEXT_MUST_NOT_BE_INDEXED",
                   "HIDDEN_TEXT_MUST_NOT_BE_INDEXED", "FOOTER_TEXT_MUST_NOT_BE_INDEXED",
                   "secret-css-rule", "color: #333", "trackingCode", "document.write"):
        assert marker not in text, marker
    talk = "\n".join(c["text"] for c in chunks if c["path"] == "html/talk.html")
    assert "核心工具是 Kaldi" in talk and "閱讀理解模型使用 BERT 微調" in talk
    # text that merely looks like markup is page text, kept as written
    assert '<script>alert("corpus-xss")</script>' in talk


def test_titles_name_the_page_not_the_site(chunks):
    """A front-matter title every page shares is replaced by the page's own first heading; HTML
    pages use <title>; a page without front matter uses its first heading."""
    titles = {c["path"]: {c["title"]} for c in chunks}
    for c in chunks:
        titles[c["path"]].add(c["title"])
    assert titles["speech.md"] == {"那些語音處理踩的坑"}
    assert titles["gpu.md"] == {"大型語言模型的 VRAM 估算"}
    assert titles["index.md"] == {"Example Meetup 首頁"}
    assert titles["html/talk.html"] == {"科技大擂台語音閱讀理解競賽心得 - Example Meetup"}
    assert titles["NLP Information Extraction/DeepKE.md"] == {"DeepKE 中文知識圖譜抽取框架"}


def test_anchors_are_the_ones_github_and_kramdown_derive(chunks):
    by_section = {(c["path"], c["section"]): c for c in chunks}
    assert by_section[("speech.md", "語音增強 (Speech Enhancement)")]["anchor"] == "語音增強-speech-enhancement"
    assert by_section[("speech.md", "聲紋辨識")]["anchor"] == "聲紋辨識"
    # the same heading twice: the second gets "-1"
    assert sorted(c["anchor"] for c in chunks if c["path"] == "gpu.md" and c["section"] == "全參數微調") == \
        ["全參數微調", "全參數微調-1"]
    talk = [c for c in chunks if c["path"] == "html/talk.html"]
    asr = next(c for c in talk if "Kaldi" in c["text"])
    assert asr["anchor"] == "asr"                                   # an HTML heading's own id
    mrc = next(c for c in talk if "閱讀理解模型使用 BERT" in c["text"])
    # no id: a text fragment of the heading, percent-encoded
    assert mrc["anchor"].startswith(":~:text=%E9%96%B1%E8%AE%80%E7%90%86%E8%A7%A3"), mrc["anchor"]   # 閱讀理解


def test_section_path_lists_the_headings_below_the_title(chunks):
    mrc = next(c for c in chunks if "閱讀理解模型使用 BERT" in c["text"])
    assert mrc["section"] == "黑客松與福爾摩沙大挑戰經驗談 > 閱讀理解 (MRC) 部分"


@pytest.mark.parametrize("path, url", [
    ("speech.md", "https://example.org/speech"),                   # jekyll: X.md is served at /X
    ("index.md", "https://example.org/"),                          # jekyll: index.md is the folder
    ("html/talk.html", "https://example.org/html/talk.html"),      # jekyll: .html as is
    ("NLP Information Extraction/DeepKE.md",                       # github: base + path, space encoded
     "https://github.com/example/papers/blob/main/NLP%20Information%20Extraction/DeepKE.md"),
])
def test_page_urls_follow_the_sources_url_rule(chunks, path, url):
    assert {c["url"] for c in chunks if c["path"] == path} == {url}


def test_fixture_chunks_respect_the_default_size(chunks):
    assert chunks and all(0 < len(c["text"]) <= 400 for c in chunks)


def _sentences(prefix: str, n: int, ends: str) -> list[str]:
    return [f"{prefix}第{i}句說明模型訓練的第{i}個步驟與注意事項{ends[i % len(ends)]}" for i in range(n)]


def test_long_sections_are_cut_at_sentence_ends_within_the_limit(tmp_path):
    """With chunk_max_chars 120: every chunk holds at most 120 characters of one section, ends at a
    sentence end (。！？； or .!?), carries that section's heading path and anchor, and no text
    is lost. The third section ends with a short sentence after a nearly full chunk."""
    first = _sentences("甲", 30, "。！？；")
    english = [f"Sentence number {i} explains one more detail of the training loop{'.!?'[i % 3]}" for i in range(12)]
    third = [f"第{i}句" + "填" * 36 + "。" for i in range(3)] + ["短句。"]     # 3 x 40 characters fill a chunk
    page = ("# 長文\n\n## 第一節\n\n" + "".join(first) + "\n\n## 第二節\n\n" + " ".join(english)
            + "\n\n### 小節\n\n" + "".join(third) + "\n\n## 第四節\n\n短短一句。\n")
    site = tmp_path / "long"
    site.mkdir()
    (site / "long.md").write_text(page, encoding="utf-8")
    config = write_config(tmp_path / "sources.yaml",
                          [{"name": "long", "path": str(site), "base_url": "https://example.org/"}],
                          {"chunk_max_chars": 120, "chunk_min_chars": 30})
    index = tmp_path / "index"
    result = run_cli("ingest", "--config", str(config), "--index", str(index))
    assert result.returncode == 0, result.stderr
    chunks = live_chunks(index)
    assert all(len(c["text"]) <= 120 for c in chunks), [len(c["text"]) for c in chunks]
    by = {name: [c for c in chunks if c["section"] == name] for name in ("第一節", "第二節", "第二節 > 小節", "第四節")}
    assert len(by["第一節"]) >= 4 and len(by["第二節"]) >= 4 and len(by["第二節 > 小節"]) >= 2
    assert all(c["text"][-1] in "。！？；" for c in by["第一節"])
    assert all(c["text"][-1] in ".!?" for c in by["第二節"])
    # nothing lost, nothing of another section
    assert "".join(c["text"] for c in by["第一節"]) == "".join(first)
    assert " ".join(c["text"] for c in by["第二節"]) == " ".join(english)
    assert "".join(c["text"] for c in by["第二節 > 小節"]) == "".join(third)
    assert [c["text"] for c in by["第四節"]] == ["短短一句。"]
    assert {c["anchor"] for c in by["第二節 > 小節"]} == {"小節"}
    assert {c["title"] for c in chunks} == {"長文"}
