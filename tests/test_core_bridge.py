"""bridge: English terms -> the Chinese terms the pages write (pure functions)."""
from __future__ import annotations

from faq_bot.bridge import COMMON_TERM_SHARE, Bridge, cedict, english_key, mine_term_pairs, parse_cedict, word_forms
from faq_bot.textproc import word_cutter


def test_mine_pairs_both_orders_and_acronyms():
    cut = word_cutter().words
    pairs = mine_term_pairs([
        "我們做了語音增強（Speech Enhancement）的實驗。",
        "採用檢索增強生成（RAG）架構。",
        "Reranker（重新排序器）再排一次。",
        "語音增強 (Speech Enhancement) 又一次。",
        "參考（2014）與（a）不是術語。",
    ], cut)
    assert pairs["speech enhancement"] == ["語音增強"]
    assert pairs["rag"] == ["檢索增強生成"]
    assert pairs["reranker"] == ["重新排序器"]
    assert "2014" not in pairs and "a" not in pairs


def test_mined_pairs_leave_out_examples_and_the_tail_of_a_joined_phrase():
    """Chinese in brackets after English is its name, not an example (「Task (如中文文字分類)」), an
    explanation (「GitHub (即將開源)」) or the name of a longer phrase the English ends ("Speech
    Synthesis & TTS (中文語音合成與音色克隆)": not what TTS alone is)."""
    pairs = mine_term_pairs([
        "如果 Pre-train 的 Task (如中文文字分類) 與 Target Task 差異過大。",
        "程式碼放在 GitHub (即將開源)。",
        "Chinese Speech Synthesis & TTS (中文語音合成與音色克隆) 的模型。",
        "TTS (語音合成) 的模型。",
        "Real-time (即時) 的處理。",
    ], word_cutter().words)
    assert "task" not in pairs and "github" not in pairs
    assert pairs["tts"] == ["語音合成"] and pairs["real-time"] == ["即時"]       # 即時 is a word, not "namely"


def test_a_one_word_term_is_not_a_dictionary_word_of_another_sense():
    """The end of 語音處理 (Speech) is 處理, which the dictionary knows as "process", never as
    "speech": the compound names it. A word the dictionary gives for the English stays alone."""
    pairs = mine_term_pairs([
        "語音處理 (Speech) 的資源。", "擴散模型 (Diffusion) 的原理。", "注意力機制 (Attention) 的計算。",
        "準備資料集 (Dataset) 的方法。", "圖像的特徵 (Feature) 的抽取。", "我們的基線 (Baseline) 很弱。",
    ], word_cutter().words)
    assert pairs["speech"] == ["語音處理"] and pairs["diffusion"] == ["擴散模型"]
    assert pairs["attention"] == ["注意力機制"]
    assert pairs["dataset"] == ["資料集"] and pairs["feature"] == ["特徵"] and pairs["baseline"] == ["基線"]


def test_english_key_and_word_forms():
    assert english_key("RAG's  Pipeline-") == "rag pipeline"
    assert "model" in word_forms("models")
    assert "query" in word_forms("queries")
    assert "stop" in word_forms("stopping")
    # British spellings are looked up the American way, as CC-CEDICT and the pages write them
    assert word_forms("normalisation")[:2] == ["normalisation", "normalization"]
    assert {"color", "colors"} <= set(word_forms("colours")) and "modeling" in word_forms("modelling")
    assert "center" in word_forms("centre") and "analyze" in word_forms("analysed")
    assert word_forms("hour") == ["hour"] and word_forms("four") == ["four"]
    # last, the verb a noun or adjective comes from, which the dictionary glosses more often
    assert word_forms("annotations")[-1] == "annotate" and word_forms("extraction") == ["extraction", "extract"]
    assert word_forms("explainable")[:2] == ["explainable", "explain"]
    assert word_forms("action") == ["action"] and word_forms("station") == ["station"]
    assert word_forms("quickly") == ["quickly", "quick"] and word_forms("easily") == ["easily", "easy"]
    assert word_forms("early") == ["early"]


def test_parse_cedict_reverses_glosses():
    table = parse_cedict([
        "# comment",
        "模型 模型 [mo2 xing2] /model/mold/matrix/pattern/",
        "停止 停止 [ting2 zhi3] /to stop/to halt/to cease/",
        "臺灣 台湾 [Tai2 wan1] /Taiwan/",
        "百度 百度 [Bai3 du4] /Baidu, Internet portal and search engine, www.baidu.com/",
        "小米 小米 [xiao3 mi3] /millet, a grain/",
        "個 个 [ge4] /CL:個|个[ge4]/individual/",
    ])
    assert table["model"] == ["模型"]
    assert table["stop"] == ["停止"]
    assert table["taiwan"] == ["台灣"]          # variant folded to the portal's form
    assert table["baidu"] == ["百度"]            # a name glossed with what it is
    assert "millet" not in table                 # a common noun's gloss is not cut at its comma
    names: dict = {}
    parse_cedict(["百度 百度 [Bai3 du4] /Baidu, Internet portal/", "小米 小米 [xiao3 mi3] /millet/"], names)
    assert names == {"baidu": ["百度"]}          # proper names only
    assert not any(k.startswith("cl") for k in table)


def test_translate_prefers_the_portals_pairs_and_longest_terms():
    known = {"語音增強": 5, "語音": 40, "模型": 90, "模特兒": 0, "大小": 30}
    bridge = Bridge(pairs={"speech enhancement": ["語音增強"]},
                    dictionary={"speech": ["語音"], "model": ["模特兒", "模型"], "size": ["大小"]})
    found = bridge.translate("How big is the speech enhancement model? What size?", lambda t: known.get(t, 0))
    assert [(t.english, t.chinese, t.mined) for t in found] == [
        ("speech enhancement", ("語音增強",), True), ("model", ("模型",), False), ("size", ("大小",), False)]
    # Chinese questions use only the portal's own pairs
    assert bridge.translate("語音增強 model", lambda t: known.get(t, 0), use_dictionary=False) == []


def test_a_dictionary_translation_says_how_much_the_pages_use_its_first_sense():
    """`share`: of the passages that write one of the word's senses, the first sense's part; a
    single character is listed after the words however often it is written."""
    known = {"模型": 90, "典型": 4, "說上": 30, "報告": 25, "說話": 25, "多頭": 3, "長": 47, "語音增強": 5}
    bridge = Bridge(pairs={"speech enhancement": ["語音增強"]},
                    dictionary={"model": ["典型", "模型"], "talk": ["報告", "說話", "說上"], "long": ["長", "多頭"]})
    found = {t.english: t for t in bridge.translate("a long talk on the speech enhancement model",
                                                      lambda t: known.get(t, 0))}
    assert found["model"].chinese == ("模型", "典型") and found["model"].share == 90 / 94
    assert found["talk"].chinese[0] == "說上" and found["talk"].share == 30 / 80
    assert found["long"].chinese == ("多頭", "長") and found["long"].share == 3 / 50
    assert found["speech enhancement"].mined and found["speech enhancement"].share == 1.0


def test_a_compound_of_ordinary_words_no_source_has_whole_is_read_word_by_word():
    known = {"安全": 36, "對齊": 33, "拒絕": 11, "微調": 50, "細": 3, "調": 9, "步驟": 4}
    bridge = Bridge(pairs={}, dictionary={"safety": ["安全"], "aligned": ["對齊"], "refusing": ["拒絕"],
                                          "fine-tuning": ["微調"], "fine": ["細"], "tuning": ["調"],
                                          "step": ["步驟"]})
    found = bridge.translate("a safety-aligned LLM over-refusing", lambda t: known.get(t, 0))
    assert [t.english for t in found] == ["safety", "aligned", "refusing"]
    # a compound the dictionary has stays whole; a name's parts (typed with capitals, or too short) stay one word
    assert [t.english for t in bridge.translate("fine-tuning", lambda t: known.get(t, 0))] == ["fine-tuning"]
    assert bridge.translate("Safety-Aligned", lambda t: known.get(t, 0)) == []
    # a sentence's first letter is no name's capital
    assert [t.english for t in bridge.translate("Safety-aligned models", lambda t: known.get(t, 0))] == [
        "safety", "aligned"]
    assert bridge.translate("the M-step", lambda t: known.get(t, 0)) == []
    # a pair of languages, capitalised as English writes languages, is two words
    languages = Bridge(pairs={}, dictionary={"mandarin": ["普通話"], "english": ["英語"], "chinese": ["中文"]})
    found = languages.translate("a Mandarin-English or English-Chinese corpus", lambda t: {"普通話": 3, "英語": 9, "中文": 40}.get(t, 0))
    assert [t.english for t in found] == ["mandarin", "english", "english", "chinese"]


def test_the_dictionary_knows_words_in_any_form():
    bridge = Bridge(pairs={}, dictionary={"egg": ["雞蛋"], "boil": ["煮"]})
    assert bridge.knows("eggs") and bridge.knows("boiling") and bridge.knows("egg")
    assert not bridge.knows("flurbix") and not Bridge(pairs={}).knows("egg")


def test_the_bundled_dictionary_loads():
    table = cedict()
    assert "模型" in table.get("model", [])


def test_a_common_chinese_word_brings_no_english():
    bridge = Bridge(pairs={"asr": ["語音辨識"], "speech recognition": ["語音辨識"], "diffusion": ["模型"],
                           "ebm": ["模型"]})
    passages = 1000
    share = {"語音辨識": 30, "模型": int(COMMON_TERM_SHARE * passages) + 1}
    known = lambda term: share.get(term, 0)     # noqa: E731
    assert bridge.english_for("語音辨識模型多大", known, passages) == [("語音辨識", ["asr", "speech recognition"])]
    share["模型"] = int(COMMON_TERM_SHARE * passages)       # at the bound: still a term
    assert dict(bridge.english_for("語音辨識模型多大", known, passages)) == {
        "語音辨識": ["asr", "speech recognition"], "模型": ["diffusion", "ebm"]}
    assert bridge.english_for("今天天氣很好", known, passages) == []
    # English questions still find the Chinese term: only the Chinese -> English direction is bounded
    assert [t.chinese for t in bridge.translate("diffusion", lambda t: 1)] == [("模型",)]


def test_a_term_found_in_another_form_keeps_the_form_looked_up():
    known = {"批量歸一化": 3, "顏色": 4}
    bridge = Bridge(pairs={"batch normalization": ["批量歸一化"], "gpu": ["圖形處理器"]}, dictionary={"color": ["顏色"]})
    found = bridge.translate("Is batch normalisation or colour used?", lambda t: known.get(t, 1))
    assert [(t.english, t.base) for t in found] == [("batch normalisation", "batch normalization"), ("colour", "color")]
    assert [(t.english, t.base) for t in bridge.translate("How many GPUs?", lambda t: 1)] == [("gpus", "gpu")]
    assert bridge.translate("the GPU", lambda t: 1)[0].base == ""          # found as written


def test_the_portals_terms_for_every_form_of_a_word_are_gathered():
    bridge = Bridge(pairs={"datasets": ["準備"], "dataset": ["資料集"]})
    found = bridge.translate("speaker recognition training datasets", lambda t: 1, use_dictionary=False)
    assert [(t.english, t.chinese, t.base) for t in found] == [("datasets", ("準備", "資料集"), "")]


def test_a_words_own_forms_are_looked_up_before_the_word_it_comes_from():
    bridge = Bridge(pairs={"state": ["狀態"]}, dictionary={"creation": ["創作"], "create": ["創建"]})
    found = bridge.translate("creation", lambda t: 1)
    assert [(t.english, t.chinese) for t in found] == [("creation", ("創作",))]     # not create's, nor a pair's
