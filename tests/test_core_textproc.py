"""textproc: the one normaliser, match keys and term matching (pure functions)."""
from __future__ import annotations

from faq_bot.textproc import (
    QUESTION_WORD_WEIGHTS, NameText, WordCutter,
    adds_little, analyser_fingerprint, asks, char_pairs, contains_term, has_cjk, has_words, is_latin, leads_on, match_key,
    name_key, normalize, opens_question, passage_pairs, repeats, split_sentences, without_citation_marks, word_cutter)


def test_normalize_folds_width_simplified_and_variants():
    assert normalize("７Ｂ模型  需要多少ＶＲＡＭ") == "7B模型 需要多少VRAM"
    assert normalize("语音识别的错别字") == "語音識別的錯別字"
    # Traditional text is not run through s2t (which would turn 台 into 臺); 臺 folds to 台
    assert normalize("科技大擂台") == normalize("科技大擂臺") == "科技大擂台"


def test_match_key_drops_markdown_space_and_case():
    assert match_key("**RTF** 是 [0.08](https://x.org)") == "rtf是0.08"
    assert match_key("语音 增强") == match_key("語音增強")


def test_contains_term_respects_latin_word_edges():
    key = match_key("Storage 與 RAG 的 pipeline")
    assert contains_term(key, "rag")
    assert not contains_term(match_key("object storage"), "rag")
    assert contains_term(match_key("檢索增強生成"), "增強")
    # a CJK term next to Latin letters is still found
    assert contains_term(match_key("用RAG做"), "rag")
    assert not contains_term(key, "")


def test_name_key_and_is_latin():
    assert name_key("Weights & Biases") == "weightsbiases"
    assert is_latin("How big is the model?")
    assert not is_latin("語音去噪模型多大 RTF")
    # mostly Latin, yet code-mixed: has_cjk tells it from an English question
    assert is_latin("stable diffusion 的 sampler 要選 euler a") and has_cjk("stable diffusion 的 sampler 要選 euler a")
    assert not has_cjk("How big is the model?") and has_cjk("㐀") and not has_cjk("ｶﾞ")


def test_name_text_finds_a_name_where_a_word_starts():
    names = NameText(["Multi-modal Large Language Model 與 BatchNormalization", "GPT-4 和 Weights & Biases，孤立點"])
    for written in ("largelanguagemodel", "languagemodel", "batchnorm", "gpt4", "weightsbiases", "孤立", "立點", "model與"):
        assert names.writes(written), written
    assert "gelan" in names.text and not names.writes("gelan")          # across "large" and "language"
    assert names.writes("與batch")                                     # a CJK character starts a word
    split = NameText(["LLMs explained by GNNs", "HTMLParser 與 YOLOv8", "İstanbul"])
    for written in ("llm", "llms", "gnn", "html", "parser", "yolov8", "istanbul"):
        assert split.writes(written), written
    assert "mse" in split.text and not split.writes("mse")              # an acronym's plural is one word
    assert not names.writes("normalizationgpt")                        # two texts are never one
    assert not names.writes("")
    # a whole word ends where a word ends
    assert names.writes("largelanguagemodel", whole=True) and names.writes("batchnormalization", whole=True)
    assert names.writes("batchnorm") and not names.writes("batchnorm", whole=True)
    assert names.writes("gpt", whole=True) and not names.writes("gp", whole=True)


def test_tokens_share_the_normaliser():
    cutter = word_cutter()
    assert cutter.tokens("语音增强") == cutter.tokens("語音增強")
    assert "的" not in cutter.tokens("模型的大小")
    assert "".join(cutter.words("語音增強模型")) == "語音增強模型"


def test_a_page_sentence_that_asks_or_leads_on():
    assert asks("Q: what is it") and asks("它有什麼用?") and asks("問：為什麼？") and not asks("它是一種模型。")
    assert opens_question("Q: 什麼是 GRU？") and opens_question("問：為什麼") and not opens_question("它有什麼用？")
    assert leads_on("有效調整學習率的方法包括：") and leads_on("It has two steps:") and leads_on("它有什麼用？")
    assert not leads_on("比例為 3:1。") and not leads_on("學習率太小: 模型收斂速度會非常緩慢。")


def test_split_sentences_keeps_marks():
    assert split_sentences("第一句。第二句！Third one. 4th") == ["第一句。", "第二句！", "Third one.", "4th"]


def test_source_marks_are_left_out_but_ranges_and_indexes_are_not():
    assert without_citation_marks("團隊在 ASR 部分的核心工具是 Kaldi [1, 2]。") == "團隊在 ASR 部分的核心工具是 Kaldi。"
    assert without_citation_marks("使用者的評分 [1-3, 11, 12]。推薦[2]。") == "使用者的評分。推薦。"
    assert without_citation_marks("見 [cite: 1] 與 RoBERTa [16]. The end") == "見 與 RoBERTa. The end"
    assert without_citation_marks("細節 [7, 15, 24-26, 28].") == "細節."
    # a range holds a 0 or a number of four digits; a mark written against a Latin letter is an index
    assert without_citation_marks("落在 [0, 1000] 的範圍內") == "落在 [0, 1000] 的範圍內"
    assert without_citation_marks("年份 [2018]") == "年份 [2018]"
    assert without_citation_marks("矩陣 A[1] 與 x[2, 3]") == "矩陣 A[1] 與 x[2, 3]"
    assert without_citation_marks("例如 [0, 1] 區間") == "例如 [0, 1] 區間"           # a 0: a range
    # after an operator or a list's comma: data, not a mark; where a clause opens: a reference
    assert without_citation_marks("X = {[0,0], [0,1], [1,0], [1,1]}") == "X = {[0,0], [0,1], [1,0], [1,1]}"
    assert without_citation_marks("a = [1, 2, 3]") == "a = [1, 2, 3]"
    assert without_citation_marks("[7] 是首先提出的") == "[7] 是首先提出的"
    assert without_citation_marks("此外，[28] 提出了一種方法") == "此外，[28] 提出了一種方法"
    # [cite: n] after anything; 、 between numbers; a mark alone (after the sentence it belongs to)
    assert without_citation_marks("準確率 90.6%[cite: 1]，延遲 (1,030 ms)[cite: 2]") == "準確率 90.6%，延遲 (1,030 ms)"
    assert without_citation_marks("說明[1、2]。") == "說明。"
    assert without_citation_marks("[11]") == "" and without_citation_marks(" [3, 4]。") == ""


def test_a_list_number_or_an_abbreviation_ends_no_sentence_but_a_line_does():
    assert split_sentences("要考量：1. 你的 GPU 夠不夠大？ 2. 語系呢？") == ["要考量：1. 你的 GPU 夠不夠大？", "2. 語系呢？"]
    assert split_sentences("Schaul et al. (2014) 比較了多種算法。下一句。") == [
        "Schaul et al. (2014) 比較了多種算法。", "下一句。"]
    assert split_sentences("速度 vs. 品質，e.g. 這樣。Fig. 3 說明。") == ["速度 vs. 品質，e.g. 這樣。", "Fig. 3 說明。"]
    # across a line break nothing is joined; a sentence that ends in a word is still cut
    assert split_sentences("作者 et al.\n下一行。") == ["作者 et al.", "下一行。"]
    assert split_sentences("2.\n下一行。") == ["2.", "下一行。"]
    assert split_sentences("It runs fast. Then it stops.") == ["It runs fast.", "Then it stops."]


def test_analyser_fingerprint_is_stable_and_named():
    a, b = analyser_fingerprint(), analyser_fingerprint()
    assert a == b and {"normaliser", "dictionary", "stopwords", "sentences"} <= set(a)


def test_latin_words_keep_their_edges_in_match_keys():
    key = match_key("The LSTM  cell 是一種 RNN")
    assert key == "the lstm cell是一種rnn" and contains_term(key, "lstm") and contains_term(key, "rnn")
    assert contains_term(match_key("Speech Enhancement model"), match_key("speech enhancement"))
    from faq_bot.textproc import eval_key

    assert eval_key("7B 模型：約 16–24 GB VRAM") == eval_key("7B模型：約16–24GB VRAM")


def test_simplified_is_judged_by_characters_not_phrases():
    assert normalize("模型的局限性") == "模型的局限性"            # not 侷限性, which the pages rarely write
    assert normalize("台灣的局限性") == "台灣的局限性"
    assert normalize("语音识别") == "語音識別"


def test_the_part_of_speech_tagger_is_built_once_when_many_threads_ask_at_once(monkeypatch):
    """Built lazily; twenty requests arriving together on a fresh server each built one (about a
    second of CPU and 70 MB each)."""
    import threading

    from faq_bot import postag

    built = []

    class CountedTagger(postag.ArrayPOSTokenizer):
        def __init__(self, *args, **kwargs) -> None:
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(postag, "ArrayPOSTokenizer", CountedTagger)
    cutter = WordCutter()
    start = threading.Barrier(8)
    found = []

    def ask() -> None:
        start.wait()
        found.append(cutter.nouns("語音去噪模型的大小"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len(found) == 8 and all(nouns == found[0] for nouns in found)
    assert "模型" in found[0]


def test_nouns_of_dictionary_words_are_the_taggers_and_a_made_up_word_goes_through_the_tagger():
    """The dictionary's own tags stand in for the tagger when every word is the dictionary's (the
    tagger would cut and tag them the same way); a word jieba's HMM made up is tagged by the tagger."""
    import jieba.posseg

    cutter = WordCutter()
    cutter.nouns("暖身")
    tagger = jieba.posseg.POSTokenizer(cutter._jieba)

    def tagged(text: str) -> list[str]:
        return [w for w, flag in tagger.cut(normalize(text)) if flag.startswith("n") and not w.isascii()]

    for text in ["怎麼申請台灣護照？", "語音去噪模型的大小是多少", "LSTM 裡面有哪幾個門？", "請推薦好吃的牛肉麵",
                 "學習率按線性縮放規則應該怎麼調的時候"]:
        assert all(len(w) < 2 or w.isascii() or cutter.known(w) for w in cutter.words(normalize(text)))
        assert cutter.nouns(text) == tagged(text), text
    made_up = "鼻嘎獸很可愛"                    # 鼻嘎獸: put together by jieba's HMM
    assert not all(cutter.known(w) for w in cutter.words(made_up) if len(w) >= 2)
    assert cutter.nouns(made_up) == tagged(made_up)


def test_short_texts_are_cut_once_and_handed_out_as_fresh_lists():
    """Terms and short questions are remembered; a caller that extends its list (the question's
    analysis does) does not change what the next caller gets."""
    cutter = word_cutter()
    first = cutter.tokens("語音增強模型")
    first.append("changed")
    assert cutter.tokens("語音增強模型") == list(cutter._tokens("語音增強模型", False))
    assert "changed" not in cutter.tokens("語音增強模型")
    words = cutter.words("語音增強模型多大")
    words.append("changed")
    assert cutter.words("語音增強模型多大") == list(cutter._words("語音增強模型多大"))
    long = "語音增強模型的大小與速度" * 10          # over SHORT_TEXT_CHARS: cut each time, same words
    assert cutter.tokens(long) == list(cutter._tokens(long, False)) and isinstance(cutter.tokens(long), list)


def test_split_sentences_hands_out_fresh_lists_of_the_same_sentences():
    text = "第一句。第二句！Third one. 第四句"
    first = split_sentences(text)
    first.append("changed")
    assert split_sentences(text) == ["第一句。", "第二句！", "Third one.", "第四句"]


def test_passage_pairs_read_the_whole_passage_without_case_or_whitespace():
    assert passage_pairs("RTF 是\n0.08") == char_pairs("rtf是0.08")
    assert passage_pairs("語音 增強") == {"語音", "音增", "增強"} and passage_pairs("") == set()


def test_adds_little_reads_one_texts_own_pairs_one_way():
    long = char_pairs("我們的模型大小是九百萬位元組而即時率是零點零八")
    part = char_pairs("模型大小是九百萬")
    assert adds_little(part, long) and not adds_little(long, part)     # the whole adds the rest of itself
    assert adds_little(long, long) and not adds_little(char_pairs("今天天氣很好"), long)
    assert not adds_little(set(), long)                                 # an empty text is never passed over
    half = char_pairs("模型大小是今天天氣很好")
    assert not adds_little(half, long) and adds_little(half, long, overlap=0.4)


def test_repeats_reads_the_shorter_texts_share_of_character_pairs():
    assert char_pairs("語音去噪") == {"語音", "音去", "去噪"} and char_pairs("語") == set()
    long, edited = char_pairs("最後我們的模型大小是九百萬位元組"), char_pairs("我們的模型大小是九百萬位元組左右")
    assert repeats(long, edited) and repeats(edited, long)
    assert repeats(char_pairs("我們的模型大小是九百萬"), long)    # all of a shorter text's pairs
    assert not repeats(char_pairs("模型大小是"), long)          # under half as long: a part, not a copy
    assert not repeats(char_pairs("今天天氣很好"), long)
    assert not repeats(set(), long) and not repeats(set(), set())   # an empty text repeats nothing
    half = char_pairs("模型大小是很大的問題")                      # 4 of its 9 pairs are in `long`
    assert not repeats(half, long) and repeats(half, long, overlap=0.4)


def test_a_question_words_weight_follows_its_part_of_speech_in_the_dictionary():
    """Nouns, verbs used as nouns, Latin words and words the dictionary lacks count fully; verbs
    less; function words (numerals, pronouns, particles, adverbs, localisers) least."""
    cutter = word_cutter()
    weights = QUESTION_WORD_WEIGHTS
    assert [cutter.word_weight(w) for w in ("資料集", "模型", "訓練", "RTF", "噗嚕嚕")] == [1.0] * 5
    assert cutter.word_weight("下載") == cutter.word_weight("使用") == weights["verb"]
    for word in ("多久", "以前", "的話", "怎麼", "大約", "一個"):
        assert cutter.word_weight(word) == weights["function"], word
    assert 0 < weights["function"] < weights["verb"] < 1


def test_reading_units_are_latin_words_and_cjk_characters():
    from faq_bot.textproc import clip_reading, reading_length

    english = "In Mark Chang's transfer learning talk, what does the generalization gap measure?"
    assert reading_length(english) == 12 and reading_length("語音去噪模型多大？") == 8
    assert reading_length("VAE 的 RTF 是 0.08") == 6            # VAE 的 RTF 是 0 08
    assert clip_reading(english, 10) == "In Mark Chang's transfer learning talk, what does the generalization"
    assert clip_reading("語音去噪模型多大？請說明", 8) == "語音去噪模型多大"
    assert clip_reading("短句。", 60) == "短句。" and clip_reading("", 3) == ""
    assert reading_length("Pokémon café naïve") == 3 and clip_reading("anything", 0) == ""
    assert len(clip_reading("😀" * 20000, 60)) == 480                  # few units, still bounded


def test_has_words_wants_a_letter_a_digit_or_a_chinese_character():
    assert has_words("好") and has_words("a") and has_words("7") and has_words("？RAG")
    for marks in ("", "？", "...", "!!!", "）。", "👋", "_", " \t"):
        assert not has_words(marks), marks


def test_time_words_are_calendar_words():
    cutter = word_cutter()
    assert cutter.time_words("台北明天會下雨嗎？") == ["明天"]
    assert cutter.time_words("语音去噪模型多大") == []
    assert cutter.time_words("現階段最推薦哪個 TTS 模型？") == []        # jieba's t, but no calendar word
