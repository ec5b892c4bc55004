"""Retrieval on the fixture site: query normalisation (Simplified -> Traditional, full-width),
answerable questions answered from the right page, off-topic ones abstained from, and one page
not filling the top 5."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from helpers import ENGLISH_QUESTION, FIXTURES, questions_jsonl, run_cli, search_jsonl, write_config

ANSWERABLE = {
    "语音去噪模型有多大": "speech.md",                       # Simplified, the page is Traditional
    "为什么百度云的语音资料集下载不了": "speech.md",
    "７Ｂ模型全參數微調需要多少ＶＲＡＭ？": "gpu.md",          # full-width letters and digits (NFKC)
    "等錯誤率 EER 是怎麼定義的": "speech.md",
    "DeepKE 可以做什麼": "NLP Information Extraction/DeepKE.md",
    "本地部署大模型可以用什麼工具": "rag.md",
}
ENGLISH = ENGLISH_QUESTION     # about html/talk.html
OFF_TOPIC = ["台北明天會下雨嗎？", "怎麼申請台灣護照？", "请推荐好吃的牛肉面",
             "How do I schedule a training pipeline with Airflow?", "Ray Tune 做超參數搜尋要怎麼設定？"]
ONE_PAGE_QUESTION = "大型語言模型的 VRAM 估算與全參數微調"     # every chunk of gpu.md matches it


def _search(index, questions: list[str], config=FIXTURES / "sources.yaml") -> dict[str, dict]:
    result = search_jsonl(index, questions_jsonl(questions), config)
    assert result.returncode == 0, result.stderr
    return {row["question"]: row for row in map(json.loads, result.stdout.splitlines())}


@pytest.fixture(scope="module")
def searcher(fixture_index):
    """One searcher over the fixture index for the tests that only read it."""
    from faq_bot.config import load_config, with_overrides
    from faq_bot.retrieve import Searcher

    return Searcher.open(with_overrides(load_config(FIXTURES / "sources.yaml"), index_dir=fixture_index))


@pytest.fixture(scope="module")
def results(fixture_index) -> dict[str, dict]:
    return _search(fixture_index, [*ANSWERABLE, ENGLISH, *OFF_TOPIC, ONE_PAGE_QUESTION])


@pytest.mark.parametrize("question", list(ANSWERABLE))
def test_answerable_questions_are_answered_from_the_right_page(results, question):
    row = results[question]
    assert row["answerable"] is True
    assert row["hits"][0]["path"] == ANSWERABLE[question]


def test_english_question_finds_the_chinese_page(results):
    top = [h for h in results[ENGLISH]["hits"][:3] if h["path"] == "html/talk.html"]
    assert top and any("Kaldi" in h["text"] for h in top)


def test_english_question_about_a_chinese_page_is_answered_with_its_sentence(results, fixture_index):
    assert results[ENGLISH]["answerable"] is True
    reply = run_cli("ask", "--json", "--config", str(FIXTURES / "sources.yaml"), "--index", str(fixture_index), ENGLISH)
    assert reply.returncode == 0, reply.stderr
    answer = json.loads(reply.stdout)
    assert any("Kaldi" in c["snippet"] for c in answer["citations"]), answer


def test_simplified_question_matches_traditional_text(results):
    hit = results["语音去噪模型有多大"]["hits"][0]
    assert "9 MB" in hit["text"] and "語音" in hit["title"]


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_questions_no_page_answers_are_abstained_from(results, question):
    """Off-topic, and on-topic questions about a tool no page mentions: answerable false, with
    the closest passages still listed (the CLI shows them as suggestions)."""
    row = results[question]
    assert row["answerable"] is False
    assert row["hits"]


def _pages_in_top5(row: dict) -> Counter:
    return Counter(h["path"] for h in row["hits"][:5])


def _settings_config(tmp_path, **settings):
    """The fixture sources with other retrieval settings (searching needs no new index)."""
    return write_config(tmp_path / "sources.yaml", [
        {"name": "site", "path": str(FIXTURES / "site"), "base_url": "https://example.org/", "url_rule": "jekyll"},
        {"name": "papers", "path": str(FIXTURES / "papers"), "base_url": "https://github.com/example/papers/blob/main/",
         "url_rule": "github"}], {"boilerplate_min_pages": 4, **settings})


def test_per_page_limit_keeps_one_page_from_filling_the_top_5(fixture_index, tmp_path):
    """The same question with the limit at 5 and at 2: unlimited, gpu.md takes 3 of the top 5;
    limited, it takes 2 and other pages move up."""
    unlimited = _search(fixture_index, [ONE_PAGE_QUESTION], _settings_config(tmp_path, max_hits_per_page=5))
    assert _pages_in_top5(unlimited[ONE_PAGE_QUESTION])["gpu.md"] == 3
    limited = _search(fixture_index, [ONE_PAGE_QUESTION], _settings_config(tmp_path, max_hits_per_page=2))
    top5 = _pages_in_top5(limited[ONE_PAGE_QUESTION])
    assert top5["gpu.md"] == 2 and max(top5.values()) == 2
    assert limited[ONE_PAGE_QUESTION]["hits"][0]["path"] == "gpu.md"


def test_an_english_question_is_embedded_with_the_chinese_terms_it_bridges_to():
    from faq_bot.bridge import Translation
    from faq_bot.retrieve import Query, dense_text

    english = Query("How big is the model?", "How big is the model?", [], [], latin=True,
                    translations=[Translation("model", ("模型", "模特兒"))])
    assert dense_text(english) == "How big is the model? 模型"
    chinese = Query("模型多大", "模型多大", [], [], latin=False, translations=[Translation("rag", ("檢索增強生成",))])
    assert dense_text(chinese) == "模型多大"


def test_only_a_sure_dictionary_sense_joins_an_english_questions_vector():
    """A general word's first sense is often another word ("talk" 說上): it stays out of the
    embedded text below DOMINANT_SENSE_SHARE; the portal's own pairs always join."""
    from faq_bot.bridge import Translation
    from faq_bot.retrieve import DOMINANT_SENSE_SHARE, Query, dense_text

    question = "In the talk, how big is the model for speech enhancement?"
    terms = [Translation("talk", ("說上", "報告"), share=0.37), Translation("model", ("模型", "典型"), share=0.96),
             Translation("speech enhancement", ("語音增強",), mined=True),
             Translation("big", ("大型",), share=DOMINANT_SENSE_SHARE)]
    assert dense_text(Query(question, question, [], [], latin=True, translations=terms)) == f"{question} 模型 語音增強 大型"
    unsure = [Translation("talk", ("說上",), share=0.37)]
    assert dense_text(Query(question, question, [], [], latin=True, translations=unsure)) == question


def test_the_embedded_text_of_a_long_question_is_bounded():
    """A 2,000-character question is embedded as its first DENSE_QUERY_CHARS characters (the model
    would embed it in several 510-token windows); every dev.yaml question fits whole."""
    from faq_bot.bridge import Translation
    from faq_bot.retrieve import DENSE_QUERY_CHARS, Query, dense_text

    long = "語音去噪模型多大" * 250
    assert dense_text(Query(long, long, [], [], latin=False)) == long[:DENSE_QUERY_CHARS]
    english = "How big is the model? " * 100
    terms = [Translation(f"term{i}", ("模型",)) for i in range(200)]
    text = dense_text(Query(english, english, [], [], latin=True, translations=terms))
    assert text.startswith(english[:DENSE_QUERY_CHARS]) and len(text) <= DENSE_QUERY_CHARS * 3 // 2 + 1
    short = "How big is the model?"
    assert dense_text(Query(short, short, [], [], latin=True, translations=terms[:2])) == short + " 模型 模型"


def test_a_long_question_and_a_long_previous_one_are_searched_in_bounded_parts(searcher):
    from faq_bot.retrieve import CONTEXT_UNITS, DENSE_QUERY_CHARS, SEARCHED_CHARS, dense_text
    from faq_bot.textproc import reading_length

    long = "語音去噪模型多大？" + "請詳細說明這個模型的架構與訓練資料" * 110
    result = searcher.search(long)
    assert result.question == long and len(result.query.text) == SEARCHED_CHARS
    assert result.hits[0].chunk.path == "speech.md"
    follow_up = searcher.search("那它的 RTF 呢？", context="語音去噪模型多大？" + "請詳細說明" * 400)
    context = follow_up.query.text[:-len(" 那它的 RTF 呢?")]
    assert context.startswith("語音去噪模型多大?請詳細說明") and reading_length(context) == CONTEXT_UNITS
    assert "RTF" in dense_text(follow_up.query) and len(dense_text(follow_up.query)) <= DENSE_QUERY_CHARS
    assert follow_up.hits[0].chunk.path == "speech.md"


def test_a_follow_ups_vector_leans_towards_the_question_itself(fixture_index):
    import numpy as np

    from faq_bot.config import load_config, with_overrides
    from faq_bot.retrieve import OWN_QUESTION_WEIGHT, Searcher

    searcher = Searcher.open(with_overrides(load_config(FIXTURES / "sources.yaml"), index_dir=fixture_index))
    calls: list[list[str]] = []
    embed = searcher.embedder.embed_queries

    def recording(texts):
        calls.append(list(texts))
        return embed(texts)

    searcher.embedder.embed_queries = recording
    alone = searcher.search("那它的 RTF 呢？")
    follow_up = searcher.search("那它的 RTF 呢？", context="語音去噪模型多大？")
    assert len(calls) == 2 and len(calls[0]) == 1            # a question alone: one text, one call
    joined, own = calls[1]                                    # a follow-up: two texts, one call
    assert "語音去噪" in joined and "RTF" in joined and own == calls[0][0]
    vectors = embed([joined, own])
    expected = vectors[0] + OWN_QUESTION_WEIGHT * vectors[1]
    expected /= np.linalg.norm(expected)
    assert follow_up.dense_background == pytest.approx(float(expected @ searcher._centroid), abs=1e-5)
    assert alone.dense_background == pytest.approx(float(vectors[1] @ searcher._centroid), abs=1e-5)
    assert follow_up.hits[0].chunk.path == "speech.md"
    # the earlier turn's concepts are marked as such (policy's own_coverage leaves them out)
    assert not any(c.earlier for c in alone.query.concepts)
    earlier = {c.text for c in follow_up.query.concepts if c.earlier}
    assert "語音" in earlier and not any("rtf" in w.lower() for w in earlier)


def test_one_question_searches_faiss_on_one_thread_and_restores_the_setting(fixture_index):
    """A one-row search gains nothing from a second OpenMP thread; the calling thread's own setting
    comes back afterwards (eval and ingest in the same thread keep every core)."""
    import faiss

    from faq_bot.config import load_config, with_overrides
    from faq_bot.retrieve import Searcher

    searcher = Searcher.open(with_overrides(load_config(FIXTURES / "sources.yaml"), index_dir=fixture_index))
    seen = []
    dense = searcher._dense
    searcher._dense = lambda vector, n: seen.append(faiss.omp_get_max_threads()) or dense(vector, n)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        result = searcher.search("語音去噪模型多大？")
        assert seen == [1] and faiss.omp_get_max_threads() == 2
        assert result.hits[0].chunk.path == "speech.md"
    finally:
        faiss.omp_set_num_threads(before)


def test_sentence_rows_looked_up_at_load_are_the_ones_stored_for_each_passage(searcher):
    """A hit's sentence scores come from rows found once per passage when the index loads; they
    are the rows the stored sentence keys give."""
    from faq_bot.textproc import split_sentences

    for chunk in searcher.index.chunks:
        assert searcher._chunk_sentence_rows[chunk.text] == searcher.stored_sentence_rows(split_sentences(chunk.text))
    hit = searcher.search("語音去噪模型多大？").hits[0]
    rows = searcher.stored_sentence_rows(split_sentences(hit.chunk.text))
    assert len(hit.sentence_scores) == len(rows) and any(r is not None for r in rows)


def test_a_lone_surrogate_is_not_a_question():
    from faq_bot.retrieve import QuestionError, check_question

    with pytest.raises(QuestionError, match=r"invalid Unicode \(an unpaired surrogate, U\+D800, at character 3\)"):
        check_question("語音\ud800去噪", 2000)
    assert check_question("語音\U0001F600去噪", 2000) == "語音\U0001F600去噪"     # a pair is a character


def test_concept_words_are_plain_words_without_stop_words_or_invented_ones(searcher):
    """A question's concepts: each character in one word (資料集, not also 資料), no function
    words (後來, 時候), and none of the words jieba's HMM invents across word boundaries; a
    dictionary word no page uses (護照) stays, it is what an uncovered question looks like."""
    words = searcher.concept_words("後來語音資料集是什麼時候下載的")
    assert "資料集" in words and "資料" not in words and "下載" in words
    assert not {"後來", "時候", "是", "的", "什麼"} & set(words)
    assert "護照" in searcher.concept_words("怎麼申請護照")
    invented = [w for w in searcher.cutter.words("比參數量差不多的網路") if not searcher.cutter.known(w)]
    assert invented and not set(invented) & set(searcher.concept_words("比參數量差不多的網路"))


def test_an_unknown_noun_is_one_no_page_writes_even_inside_a_longer_word(searcher):
    from faq_bot.textproc import name_key

    assert searcher._unknown_noun("護照")
    # two characters a page writes side by side across a word boundary: no BM25 word, yet written
    text = searcher.index.chunks[0].text
    words = [w for w in searcher.cutter.words(text) if w.strip()]
    pairs = [a[-1] + b[0] for a, b in zip(words, words[1:])
             if "\u4e00" <= a[-1] <= "\u9fff" and "\u4e00" <= b[0] <= "\u9fff"]
    across = next(p for p in pairs if not searcher._df.get(p))
    assert name_key(across) in name_key(text) and not searcher._unknown_noun(across)


def test_a_time_word_no_page_writes_is_unknown_as_a_noun_is(searcher):
    assert "明天" in searcher.analyse("台北明天會下雨嗎？").unknown_nouns
    assert "今晚" in searcher.analyse("今晚的比賽幾點開打？").unknown_nouns
    assert searcher.analyse("語音去噪模型多大？").unknown_nouns == []


def test_an_english_word_the_dictionary_knows_but_no_page_covers_is_kept_as_unknown(searcher):
    """passport -> 護照, which no page writes: a concept no passage holds, and an unknown term, as 護照
    is in a Chinese question; a word no dictionary knows, or a contraction, says nothing."""
    assert searcher.bridge.knows("passport") and searcher.bridge.knows("passports")
    query = searcher.analyse("How do I renew my passport?")
    assert "passport" in [c.text for c in query.concepts] and "passport" in query.unknown_nouns
    query = searcher.analyse("Where is my flurbix?")
    assert "flurbix" not in {c.text for c in query.concepts} and query.unknown_nouns == []
    # the stems the word cutter leaves of contractions are other dictionary words (won -> 韓元)
    assert searcher.bridge.knows("won") and searcher.bridge.knows("haven")
    for question in ("Why won't it load?", "I haven't got one."):
        assert not {"won", "haven"} & set(searcher.analyse(question).unknown_nouns)


def test_an_english_word_no_page_writes_in_a_chinese_question_is_unknown(searcher):
    """A visitor typing code-mixed Chinese names things: "flurbix" there is what the pages do not
    cover, as 護照 is; in an English question the same word may be a typo and says nothing. A word
    some page writes, a short one and a number are not unknown."""
    query = searcher.analyse("flurbix 跟 kaldi 差在哪")
    assert "flurbix" in query.unknown_nouns and "flurbix" in [c.text for c in query.concepts]
    assert "kaldi" not in query.unknown_nouns
    assert searcher.analyse("Where is my flurbix?").unknown_nouns == []
    assert not {"zq", "98765"} & set(searcher.analyse("zq 跟 98765 是什麼").unknown_nouns)


def test_a_name_in_the_plural_is_found_where_the_pages_write_it_in_the_singular(searcher):

    assert searcher._names.writes("bert") and not searcher._names.writes("berts")      # the fixture's pages
    assert searcher.analyse("Which BERT works best?").missing_names == []
    assert searcher.analyse("Which BERTs work best?").missing_names == []
    assert searcher.analyse("Which Zyxwvs work best?").missing_names == ["Zyxwvs"]
    assert searcher.analyse("Which BERT-based taggers work best?").missing_names == []   # the pages write no "BERT-based"
    assert searcher.analyse("Which Zyxwv-based taggers work best?").missing_names == ["Zyxwv"]
    # a capitalised noun's plural is found where the pages write its singular as a whole word
    assert searcher.analyse("Which Finite State Transducers does Kaldi use?").missing_names == []
    assert searcher.analyse("Which Finite State Transducs does Kaldi use?").missing_names == ["State Transducs"]
    # only an acronym loses its s: a name whose shorter form is written inside other words is not
    # found there ("Keras" is no "Kera")
    name = "Bers"                      # "ber" is written (inside "bert"), "bers" is not
    assert searcher._names.writes("ber") and not searcher._names.writes(name.lower())
    assert not searcher._names.writes("ber", whole=True) and searcher._names.writes("bert", whole=True)
    assert searcher.analyse(f"How do I install {name}?").missing_names == [name]


def test_two_names_side_by_side_are_two_names_where_the_pages_write_each(searcher):
    """A keyword question puts names side by side ("LayoutLM FUNSD 評估指標"). Two names with an
    inner capital or a digit that the pages write each are not one missing name; capitalised words
    (Ray Tune, Label Studio) are one name, found only where the pages write it whole."""
    assert searcher._names.writes("deepke") and searcher._names.writes("cuda")
    assert searcher.analyse("DeepKE CUDA 版本").missing_names == []
    assert searcher.analyse("DeepKE Zyxwv 版本").missing_names == ["DeepKE Zyxwv"]     # one of them unwritten
    assert searcher.analyse("Which Deep Tune works best?").missing_names == ["Deep Tune"]


def test_a_code_identifier_no_page_writes_is_a_missing_name(searcher):
    """「LoRA 的 lora_alpha 設多少」: a parameter of one program that no page names; the pages write
    BERT, not bert_zyxwv."""
    assert searcher.analyse("BERT 的 bert_zyxwv 一般設多少？").missing_names == ["bert_zyxwv"]
    assert searcher.analyse("What is the default bert_zyxwv?").missing_names == ["bert_zyxwv"]
    assert searcher.analyse("BERT 的參數一般設多少？").missing_names == []


def test_a_version_tag_beside_a_name_is_part_of_it(searcher, monkeypatch):
    """"DeepSeek V4": V4 is written somewhere (as a version of something else), and so is DeepSeek,
    but the pair names one thing, which the pages do not write: still missing."""
    written = searcher._name_written
    monkeypatch.setattr(searcher, "_name_written", lambda p: p in ("DeepKE", "V4", "CUDA") or written(p))
    assert searcher.analyse("DeepKE V4 版本").missing_names == ["DeepKE V4"]
    assert searcher.analyse("DeepKE CUDA 版本").missing_names == []


def test_a_name_the_pages_hold_only_across_two_words_is_missing(searcher):
    """GELAN is in "large language model" once the spaces go: a name must begin where a word does."""
    names = searcher._names
    text, starts = names.text, names._starts
    across = next(text[i - 2:i + 3] for i in range(2, len(text) - 3)
                  if starts[i] and not starts[i - 1] and text[i - 2:i + 3].isascii()
                  and text[i - 2:i + 3].isalpha() and not any(starts[i + 1:i + 3]) and not names.writes(text[i - 2:i + 3]))
    name = across.upper()
    assert searcher.analyse(f"What is {name} for?").missing_names == [name]
    assert searcher.analyse("What is BERT for?").missing_names == []
    # an ordinary word keeps the looser test: inside a longer word it is written ("moving" in "removing")
    assert searcher._written(across) and not searcher._written("zqxjv")


def test_name_phrases_are_written_like_names_not_capitalised_sentence_openings():
    from faq_bot.retrieve import name_phrases

    assert name_phrases("Summarize DeepKE") == ["DeepKE"]                 # "Summarize" only opens the question
    assert name_phrases("How do I schedule a training pipeline with Airflow?") == ["Airflow"]
    assert name_phrases("Ray Tune 做超參數搜尋要怎麼設定？") == ["Ray Tune"]  # Latin words of a Chinese question
    assert name_phrases("What is Facebook's bAbI dataset?") == ["Facebook", "bAbI"]
    assert name_phrases("how big is the speech denoising model?") == []
    # languages and scripts are capitalised in English, not names
    assert name_phrases("Which tool segments Traditional Chinese best, Jieba or CKIP?") == ["Jieba", "CKIP"]
    assert name_phrases("Is there a Mandarin-English code-switching corpus, or a Chinese-English TTS?") == ["TTS"]
    assert name_phrases("Does Whisper-English beat Mandarin-BERT?") == ["Whisper-English", "Mandarin-BERT"]
    # an ordinary word hyphenated to a name is not part of it, and parts it from the next name
    assert name_phrases("Which LLM-based agents does the portal list?") == ["LLM"]
    assert name_phrases("Which Transformer-based TTS models are recommended?") == ["Transformer", "TTS"]
    # a dictionary word beside an acronym is ordinary too ("AI": too short to check)
    assert name_phrases("What is the explainable-AI talk about?", lambda w: w == "explainable") == []
    assert name_phrases("What is the explainable-AI talk about?") == ["explainable-AI"]
    words = {"guard", "accelerated"}.__contains__                        # dictionary words; neox is none
    assert name_phrases("How do I fine-tune GPT-neox or Llama-guard?", words) == ["GPT-neox", "Llama-guard"]
    assert name_phrases("Is it GPU-accelerated?", words) == ["GPU"]
    assert name_phrases("Which models are GPU-accelerated.") == ["GPU"]          # the full stop is no part of it
    assert name_phrases("推薦系統做 session-based 推薦") == ["session-based"]    # no name in it: whole
    assert name_phrases("How does GPT-4o compare with t-SNE?") == ["GPT-4o", "t-SNE"]
    # an amount with its unit is no name, and parts the names beside it
    assert name_phrases("FlashVideo 1080p generation time") == ["FlashVideo"]
    assert name_phrases("RTX 4090 夠跑 70B 嗎") == ["RTX 4090"]
    # a code identifier names one program's parameter, however it is cased
    assert name_phrases("What are UMAP's default values for n_neighbors and min_dist?") == ["UMAP", "n_neighbors", "min_dist"]
    assert name_phrases("LoRA 的 lora_alpha 設多少") == ["LoRA", "lora_alpha"]
    assert name_phrases("what does the model_name setting do") == ["model_name"]
    assert name_phrases("What is lora_alpha's default?") == ["lora_alpha"]         # a possessive ends it
    assert name_phrases("lora_alpha_ 設多少") == ["lora_alpha"]
    assert name_phrases("Is 1_000_000 steps enough?") == [] and name_phrases("1_000_000 步夠嗎") == []


def test_diversify_caps_a_page_and_puts_a_repeated_passage_after_the_others():
    from faq_bot.chunk import Chunk
    from faq_bot.retrieve import Hit, diversify

    def hit(page: str, text: str) -> Hit:
        chunk = Chunk(id=f"{page}::{text[:4]}", source="site", path=page, url=f"https://example.org/{page}",
                      anchor="s", title="t", section="", text=text, content_hash=text)
        return Hit(chunk, 0.1, 0.9, 1.0, 1, 1)

    said = "最後我們的模型大小是經過優化的九百萬位元組，而即時率是零點零八，可以在手機上執行。"
    hits = [hit("a.md", "第一段：語音去噪的架構。"), hit("a.md", "第二段：資料的準備。"), hit("a.md", "第三段：訓練的細節。"),
            hit("html/NO1.html", said), hit("notebooklm/NO1.md", "我們" + said), hit("b.md", "另一頁的說明。")]
    top = diversify(hits, per_page=2, k=4)
    # a.md's third passage and the notes' copy of the html passage come after the others
    assert [h.chunk.text for h in top] == [hits[i].chunk.text for i in (0, 1, 3, 5)]
    assert [h.chunk.text for h in diversify(hits, per_page=2, k=6)][4:] == [hits[2].chunk.text, hits[4].chunk.text]
    assert len(diversify(hits, per_page=3, k=3)) == 3


def test_diversify_keeps_a_twin_that_goes_on_differently_and_passes_over_one_that_adds_nothing():
    """The notes of a chapter open as its HTML card does and then give the drawbacks the card
    lacks: both stay. A passage whose text a listed one holds adds nothing: it waits."""
    from faq_bot.chunk import Chunk
    from faq_bot.retrieve import Hit, diversify

    def hit(page: str, text: str) -> Hit:
        chunk = Chunk(id=f"{page}::{text[:4]}", source="site", path=page, url=f"https://example.org/{page}",
                      anchor="s", title="t", section="", text=text, content_hash=text)
        return Hit(chunk, 0.1, 0.9, 1.0, 1, 1)

    card = "提前終止：如果驗證集性能不再提升或開始惡化，就提前停止訓練，並回到驗證誤差最低時的參數。"
    notes = card + "缺點：需要驗證集，因而減少了訓練數據；對驗證集敏感；可能過早停止。優點：幾乎不用調整，成本很低。"
    hits = [hit("html/CH7.html", card), hit("notebooklm/CH7.md", notes), hit("GeminiAbstract/PDF7.md", card[:30]),
            hit("b.md", "另一頁的說明。")]
    assert [h.chunk.path for h in diversify(hits, per_page=2, k=3)] == [
        "html/CH7.html", "notebooklm/CH7.md", "b.md"]
    # the other order: the notes first, and the card, all of it in the notes, waits
    assert [h.chunk.path for h in diversify([hits[1], hits[0], hits[3]], per_page=2, k=2)] == [
        "notebooklm/CH7.md", "b.md"]


def test_diversify_keeps_a_passage_that_holds_a_shorter_one():
    """A meetup's heading line is part of the table that lists the meetup with its date, not a
    copy of it: both stay in the top places."""
    from faq_bot.chunk import Chunk
    from faq_bot.retrieve import Hit, diversify

    def hit(page: str, text: str) -> Hit:
        chunk = Chunk(id=f"{page}::{text[:4]}", source="site", path=page, url=f"https://example.org/{page}",
                      anchor="s", title="t", section="", text=text, content_hash=text)
        return Hit(chunk, 0.1, 0.9, 1.0, 1, 1)

    heading = "2020/03/20, 杜岳華, 幾何深度學習是在幾何什麼的？"
    table = ("44 | 神經網路的黑執事 | 2020/08/14 | 黃志勝\n43 | 幾何深度學習是在幾何什麼的？ | 2020/03/20 | 杜岳華\n"
             "42 | 語音辨識的前世今生 | 2020/02/21 | 陳縕儂\n41 | 強化學習的應用與挑戰 | 2020/01/17 | 林軒田")
    hits = [hit("html/NO43.html", heading), hit("README.md", table), hit("b.md", "另一頁的說明。")]
    assert [h.chunk.path for h in diversify(hits, per_page=2, k=2)] == ["html/NO43.html", "README.md"]


def test_the_word_search_sums_each_words_bm25_score_times_its_weight(searcher):
    """A function word (一次) adds 0.3 of its BM25 score, a verb (辨識) 0.7, a noun (模型) all of it:
    the same sums as bm25s' own scores of each word, weighted."""
    import numpy as np

    from faq_bot.textproc import QUESTION_WORD_WEIGHTS

    words = ["模型", "辨識", "一次"]
    assert all(w in searcher._vocab for w in words)
    weights = [1.0, QUESTION_WORD_WEIGHTS["verb"], QUESTION_WORD_WEIGHTS["function"]]
    expected = sum(w * searcher.index.bm25.get_scores([searcher._vocab[word]]) for word, w in zip(words, weights))
    found = searcher._bm25(words, 1000)
    assert found and len(found) == int((expected > 0).sum())
    assert [i for i, _ in found] == sorted((i for i, _ in found), key=lambda i: -expected[i])
    assert np.allclose([s for _, s in found], [expected[i] for i, _ in found], rtol=1e-5)
    unweighted = searcher.index.bm25.get_scores([searcher._vocab[w] for w in words])
    assert not np.allclose(unweighted[[i for i, _ in found]], [s for _, s in found])


def test_a_function_words_concept_weighs_less_than_its_idf(searcher):
    from faq_bot.textproc import QUESTION_WORD_WEIGHTS

    concepts = {c.text: c.weight for c in searcher.analyse("語音辨識模型要訓練多久").concepts}
    idf = {w: searcher._idf_of(searcher._df.get(w, 0)) for w in concepts}
    assert concepts["模型"] == pytest.approx(idf["模型"])
    assert concepts["多久"] == pytest.approx(idf["多久"] * QUESTION_WORD_WEIGHTS["function"])
    assert concepts["辨識"] == pytest.approx(idf["辨識"] * QUESTION_WORD_WEIGHTS["verb"])


def test_an_unknown_noun_the_concepts_passed_over_is_a_concept_unless_it_straddles_a_word(searcher):
    """「健保卡要怎麼換發」: the concept words leave out 健保卡要 and 換發 (in no dictionary nor page:
    words jieba's HMM made up), but the tagger finds the noun 換發, which no page writes: a concept as
    heavy as an unseen word, so no passage can cover the whole question. 能線 of 「能線上串流」
    overlaps 線上: the cut's mistake, no concept."""
    query = searcher.analyse("台灣的健保卡要怎麼換發？")
    assert "換發" in query.unknown_nouns and "換發" not in searcher.concept_words(query.normalized)
    weights = {c.text: c.weight for c in query.concepts}
    assert weights["換發"] == pytest.approx(searcher._idf_of(0) * searcher.cutter.word_weight("換發"))
    assert len([c for c in query.concepts if c.text == "換發"]) == 1
    assert searcher._straddles_a_word("能線", "語音模型能線上串流") and not searcher._straddles_a_word("換發", query.normalized)
    query = searcher.analyse("語音模型能線上串流嗎？")
    assert "能線" in query.unknown_nouns and "能線" not in {c.text for c in query.concepts}



def test_an_english_term_in_another_form_is_covered_by_the_form_the_pages_write(searcher):
    from faq_bot.policy import coverage
    from faq_bot.textproc import match_key

    query = searcher.analyse("Which finite state transducers does Kaldi use?")
    transducers = next(c for c in query.concepts if c.text == "transducers")
    assert "transducer" in transducers.alternatives          # looked up as "transducer"
    assert coverage([transducers], match_key("Kaldi 依賴 Finite State Transducer (FST)")) == 1.0


def test_a_name_the_pages_write_only_in_chinese_is_no_missing_name(searcher):
    # the fixture's pages write 百度 and 台灣, never Baidu or Taiwan; the dictionary names them
    assert not searcher._names.writes("baidu")
    assert searcher.analyse("Why can't I download Baidu's speech datasets in Taiwan?").missing_names == []
    assert searcher.analyse("Why can't I download Zyxwv's speech datasets?").missing_names == ["Zyxwv"]



def test_a_hyphenated_term_is_one_concept_and_colloquial_words_are_no_nouns(searcher, monkeypatch):
    from faq_bot.bridge import Bridge

    monkeypatch.setattr(searcher, "bridge", Bridge(pairs={"fine-tune": ["微調"]}, dictionary=searcher.bridge.dictionary))
    concepts = [c.text for c in searcher.analyse("How long does a fine-tune of the model take?").concepts]
    assert "fine-tune" in concepts and "fine" not in concepts and "tune" not in concepts
    # 幹嘛 ("what for") asks, as 什麼 does: no unknown noun of the question
    assert "幹嘛" not in searcher.analyse("語音增強到底可以拿來幹嘛").unknown_nouns


def test_english_function_words_are_no_terms_the_portal_lacks(searcher):
    query = searcher.analyse("Can't I just tell whether the speech enhancement model is any good, even a little?")
    assert not {"can't", "just", "whether", "little"} & {c.text for c in query.concepts}
    assert not {"can't", "just", "whether", "little"} & set(query.unknown_nouns)


def test_a_name_is_translated_only_by_the_portals_pairs_or_a_proper_names_entry(searcher, monkeypatch):
    from faq_bot.bridge import Bridge
    from faq_bot.textproc import NameText

    # 語音 is written by the fixture's pages; as a common noun's sense it does not make "Atlas" written
    monkeypatch.setattr(searcher, "bridge", Bridge(pairs={}, dictionary={"atlas": ["語音"]}))
    assert searcher.analyse("How does Atlas compare?").missing_names == ["Atlas"]
    monkeypatch.setattr(searcher, "bridge", Bridge(pairs={}, dictionary={"atlas": ["語音"]}, names={"atlas": ["語音"]}))
    assert searcher.analyse("How does Atlas compare?").missing_names == []
    # a title-case plural in -ies is found by its singular in -y
    monkeypatch.setattr(searcher, "_names", NameText(["Named Entity Recognition"]))
    assert searcher.analyse("How are Named Entities tagged?").missing_names == []


def test_a_follow_ups_embedded_text_keeps_the_question_whole():
    from faq_bot.retrieve import DENSE_QUERY_CHARS, Query, dense_text

    earlier = ("In the speech processing talk, which model did the team finally choose for denoising noisy "
               "call-centre recordings, and how large was it compared with the baseline?")
    both = f"{earlier} What about its RTF?"
    text = dense_text(Query(both, both, [], [], latin=True, earlier_chars=len(earlier) + 1))
    assert text.endswith(" What about its RTF?") and len(text) <= DENSE_QUERY_CHARS
    assert text.startswith("In the speech processing talk") and " and What" in text     # cut between words
