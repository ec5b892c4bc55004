"""answer: passages around the quoted sentences, citations, text fragments, follow-ups (pure)."""
from __future__ import annotations

from urllib.parse import unquote

from faq_bot.answer import (Answer, build_answer, follow_up_context, passage_around, passage_snippet,
                            previous_questions, searched_question, text_fragment)
from faq_bot.chunk import Chunk
from faq_bot.policy import Decision, ScoredSentence
from faq_bot.retrieve import Hit, Query, SearchResult


def test_passage_around_centres_on_the_sentence_within_the_limit():
    sentences = [f"第{i}句話在這裡。" for i in range(10)]
    text = passage_around(sentences, 5, limit=30)
    assert "第5句" in text and len(text) <= 32 and text.startswith("…") and text.endswith("…")
    assert passage_around(["只有一句。"], 0) == "只有一句。"
    assert passage_around(["很長" * 200], 0, limit=50).endswith("…")


def test_passage_snippet_fills_with_the_best_other_sentences_in_page_order():
    sentences = [f"第{i}句話在這裡。" for i in range(10)]          # 8 characters each
    # the quote (5) and the two best others that fit in 30 characters, gaps marked
    text = passage_snippet(sentences, 5, [5, 2, 9, 6], limit=30)
    assert text == "…第2句話在這裡。 … 第5句話在這裡。 … 第9句話在這裡。"
    # a sentence that does not fit is passed over for a later one that does
    long = ["短句一。", "很長" * 20 + "。", "短句二。", "短句三。"]
    assert passage_snippet(long, 0, [1, 3], limit=12) == "短句一。 … 短句三。"
    assert passage_snippet(["只有一句。"], 0, []) == "只有一句。"
    assert passage_snippet(["很長" * 200], 0, [0], limit=50).endswith("…")
    # indexes outside the passage are ignored; next sentences joined without a gap
    assert passage_snippet(["甲。", "乙。", "丙。"], 1, [7, 2, -1]) == "…乙。 丙。"
    # an empty sentence (one that was only a source mark) is nothing left out, and shows nothing
    assert passage_snippet(["", "甲。", "", "乙。", "丙。", ""], 1, [3, 2]) == "甲。 乙。…"
    assert passage_snippet(["", "甲。", "", "乙。", ""], 1, [3]) == "甲。 乙。"


def test_passage_snippet_shows_a_question_or_a_lead_in_only_with_what_follows_it():
    sentences = ["AdaGrad 為每個參數維護梯度平方和。", "Q: AdaGrad 的主要缺點是什麼？", "學習率最終變得非常小。",
                 "方法包括：", "嘗試不同的數量級。", "Q: 最後一個問題？"]
    # the page's question comes with its answer, the lead-in with what it leads to
    assert passage_snippet(sentences, 0, [1, 3]) == ("AdaGrad 為每個參數維護梯度平方和。 Q: AdaGrad 的主要缺點是什麼？ "
                                                     "學習率最終變得非常小。 方法包括： 嘗試不同的數量級。…")
    # where the answer does not fit, the question is not shown alone: a later sentence fills instead
    assert passage_snippet(sentences, 0, [1, 4], limit=40) == "AdaGrad 為每個參數維護梯度平方和。 … 嘗試不同的數量級。…"
    # a question the passage does not answer (its last sentence) never fills
    assert passage_snippet(sentences, 0, [5]) == "AdaGrad 為每個參數維護梯度平方和。…"
    # a quote that leads on is shown with what follows it first, before better-ranked sentences
    assert passage_snippet(sentences, 3, [0], limit=30) == "…方法包括： 嘗試不同的數量級。…"
    # a question asked in two sentences brings both and the answer
    two = ["甲。", "Q: 什麼是乙？", "它和丙有何不同？", "乙是丁。"]
    assert passage_snippet(two, 0, [1]) == "甲。 Q: 什麼是乙？ 它和丙有何不同？ 乙是丁。"


def test_text_fragment_encodes_and_splits_long_sentences():
    short = text_fragment("最後我們的模型大小是 9 MB。")
    assert short.startswith(":~:text=") and unquote(short[len(":~:text="):]) == "最後我們的模型大小是 9 MB"
    assert "%2D" in text_fragment("a-b c")
    long = text_fragment("第一個子句很長很長很長很長很長很長很長很長很長，" + "中間" * 40 + "，最後一個子句。")
    start, end = long[len(":~:text="):].split(",")
    assert unquote(start) == "第一個子句很長很長很長很長很長很長很長很長很長" and unquote(end) == "最後一個子句"
    assert text_fragment("。") == ""


def test_follow_up_context():
    history = ["LSTM 裡面有哪幾個門？"]
    assert follow_up_context("那 GRU 呢？", history) == "LSTM 裡面有哪幾個門？"
    assert follow_up_context("後來改用什麼模型？", history) == "LSTM 裡面有哪幾個門？"      # short
    assert follow_up_context("What about its speed?", history) == "LSTM 裡面有哪幾個門？"
    # an English possessive or object pronoun anywhere points back; in Chinese a pronoun where the question starts
    for question in ("What are its main weaknesses at the moment?", "Which optimiser is usually paired with them?",
                     "How fast is their training?"):
        assert follow_up_context(question, history) == "LSTM 裡面有哪幾個門？", question
    for question in ("What are the main weaknesses of capsule networks today?", "How long does it take to train "
                     "a speech recognition model?", "Is it possible to download the slides?",
                     "Who should I contact in the IT department about ITS access?"):
        assert follow_up_context(question, history) is None, question
    # "it" or "they" points back, unless "it" is the empty subject of "it takes", "is it possible to" ...
    for question in ("Which languages does it cover?", "Does it support Chinese?", "Can it run on a CPU?",
                     "Is it free for commercial use?", "Is there anything built on top of it that also gives you timestamps?"):
        assert follow_up_context(question, history) == "LSTM 裡面有哪幾個門？", question
    for question in ("Is it worth learning speech processing today?", "Do you think it’s worth learning speech processing?",
                     "Does it matter which optimizer I use?", "Does it depend on the batch size?",
                     "Is it necessary to normalise the audio first?"):
        assert follow_up_context(question, history) is None, question
    assert follow_up_context("為什麼大家都說 GRU 比較快，它有什麼證據嗎？", history) is None
    # words that point back from inside (on it, in it) or a verb's object "one" do too
    for question in ("現在的模型在上面分數都很高了，真正難的地方在哪？", "裡面提到的 DCRNN 多引入了什麼概念？",
                     "Did anyone at the meetup share first-hand experience building one?"):
        assert follow_up_context(question, history) == "LSTM 裡面有哪幾個門？", question
    for question in ("DNC 比神經圖靈機多了時間連結矩陣，那個矩陣是用來記錄什麼的？",
                     "When doing gradient checking, should I use one-sided or centered finite differences?",
                     "What should the final learning rate be relative to the initial one?"):
        assert follow_up_context(question, history) is None, question
    assert follow_up_context("深度學習要買哪一代以上的顯卡比較好？", history) is None   # stands alone
    assert follow_up_context("那 GRU 呢？", []) is None
    assert follow_up_context("那 GRU 呢？", [{"role": "user", "content": "問題一"},
                                           {"role": "assistant", "content": "答"}]) == "問題一"



def test_small_talk_is_no_earlier_question_and_courtesy_is_not_searched():
    history = ["你好", "LSTM 裡面有哪幾個門？謝謝", {"role": "assistant", "content": "答"}, {"role": "user", "content": "thanks!"}]
    assert previous_questions(history) == ["LSTM 裡面有哪幾個門？"]
    # the follow-up leans on the question, not on the thanks after it
    assert follow_up_context("那 GRU 呢？", history) == "LSTM 裡面有哪幾個門？"
    assert searched_question("謝謝！那 GRU 呢？", history) == ("那 GRU 呢？", "LSTM 裡面有哪幾個門？")
    assert searched_question("你好，請問深度學習要買哪一代以上的顯卡比較好？", history) == (
        "深度學習要買哪一代以上的顯卡比較好？", None)


def test_a_reply_to_small_talk_shows_its_text_and_nothing_else():
    reply = Answer(question="你好", answerable=False, citations=[], mode="small_talk", text="你好！我是… *hi*")
    assert reply.shown_text() == "" and reply.hits == []          # an abstention for eval; nothing searched
    assert reply.to_text() == "你好！我是… *hi*"
    assert reply.to_markdown() == "你好！我是… \\*hi\\*"          # escaped, and no "not covered" line
    assert reply.to_dict()["mode"] == "small_talk" and reply.to_dict()["citations"] == []


def test_a_follow_up_of_a_follow_up_is_searched_with_the_turn_that_names_the_topic():
    history = ["深度學習要買哪一代以上的顯卡比較好？", "得分匹配是怎麼避開配分函數的？", "它可以用在離散資料上嗎？"]
    # the previous turn leans on its own predecessor, which names the topic; the one before stands apart
    assert follow_up_context("那離散資料要改用什麼方法？", history) == "得分匹配是怎麼避開配分函數的？ 它可以用在離散資料上嗎？"
    assert follow_up_context("那離散資料要改用什麼方法？", history[:2]) == "得分匹配是怎麼避開配分函數的？"
    chain = ["RBM 是什麼？", "那 DBN 呢？", "那 DBM 呢？", "它們差在哪？"]     # at most MAX_CONTEXT_TURNS turns
    assert follow_up_context("那訓練呢？", chain) == "那 DBN 呢？ 那 DBM 呢？ 它們差在哪？"
    assert follow_up_context("深度學習要買哪一代以上的顯卡比較好？", history) is None
    # a short previous turn may name its own topic: it does not pull in the one before it
    assert follow_up_context("那它的 RTF 呢？", ["混合檢索是怎麼做的", "語音去噪模型多大？"]) == "語音去噪模型多大？"
    # nor does a turn that would not fit in the context beside it
    assert follow_up_context("那它的 RTF 呢？", ["怎麼申請台灣護照？" * 8, "它要多久？"]) == "它要多久？"
    # fits: the joined turns, as the search cleans them, at most CONTEXT_UNITS (60) words or CJK characters
    assert follow_up_context("那呢？", ["甲" * 56, "它要多久？"]) == "甲" * 56 + " 它要多久？"        # 60
    assert follow_up_context("那呢？", ["甲" * 57, "它要多久？"]) == "它要多久？"                     # 61
    assert follow_up_context("那呢？", ["甲" * 56 + "\n\n\n", "它要多久？"]) == "甲" * 56 + "\n\n\n 它要多久？"
    # an English turn is measured in words, as a Chinese one is in characters: 106 characters, 17 words
    english = ["In Mark Chang's transfer learning talk, what does the generalization gap measure?",
               "And what about its bound?"]
    assert follow_up_context("And what can I tell my boss?", english) == " ".join(english)
    # a turn asked twice in a row counts once
    assert follow_up_context("那訓練呢？", ["RBM 是什麼？", "那 DBN 呢？", "那 DBN 呢？"]) == "RBM 是什麼？ 那 DBN 呢？"


def _hit(text: str, page: str, anchor: str) -> Hit:
    c = Chunk(id=f"{page}::{anchor}", source="site", path=page, url=f"https://example.org/{page}", anchor=anchor,
              title="T", section="S", text=text, content_hash="h")
    return Hit(c, 0.03, 0.9, 1.0, 1, 1)


def test_quotes_of_one_section_share_a_citation_with_a_fragment_link():
    hits = [_hit("甲句。乙句。", "a.md", "sec"), _hit("丙句。", "a.md", "sec"), _hit("丁句。", "b.md", "")]
    result = SearchResult("q", Query("q", "q", [], [], False), hits)
    quotes = [ScoredSentence(0, 1, "乙句。", 1, 1, 0, False), ScoredSentence(1, 0, "丙句。", 1, 1, 0, False),
              ScoredSentence(2, 0, "丁句。", 1, 1, 0, False)]
    reply = build_answer("q", result, Decision(True, 0.9, "", quotes, {}))
    assert [c.n for c in reply.citations] == [1, 2]
    assert "乙句" in reply.citations[0].snippet and "丙句" in reply.citations[0].snippet
    assert reply.citations[0].url.startswith("https://example.org/a.md#sec:~:text=")
    assert reply.citations[1].url.startswith("https://example.org/b.md#:~:text=")
    assert "乙句" in reply.shown_text() and reply.to_dict()["mode"] == "extractive"
    refused = build_answer("q", result, Decision(False, 0.1, "no", quotes, {}))
    assert not refused.answerable and refused.shown_text() == "" and [s.n for s in refused.suggestions] == [1, 2]


def test_a_quote_is_shown_with_its_passages_best_other_sentence_not_only_its_neighbour():
    background = "這是很長的背景說明句子，" * 32 + "。"      # 385 characters: the lead's 400 hold it or the answer
    text = "名稱介紹。" + background + "答案是 9 MB。旁邊的句子。"
    hits = [_hit(text, "a.md", "sec")]
    result = SearchResult("q", Query("q", "q", [], [], False), hits)
    ranked = [ScoredSentence(0, i, s, 1, 1, 0, False) for i, s in ((0, "名稱介紹。"), (2, "答案是 9 MB。"),
                                                                   (3, "旁邊的句子。"), (1, background))]
    with_ranking = build_answer("q", result, Decision(True, 0.9, "", ranked[:1], {}, ranked))
    by_position = build_answer("q", result, Decision(True, 0.9, "", ranked[:1], {}))
    assert with_ranking.citations[0].snippet == "名稱介紹。 … 答案是 9 MB。 旁邊的句子。"
    assert by_position.citations[0].snippet.startswith("名稱介紹。 這是很長") and "9 MB" not in by_position.citations[0].snippet


def test_a_reply_shows_no_source_marks_and_uses_their_room_for_the_answer():
    # 「[1, 2]」 after every sentence of NotebookLM's notes: left out of what is shown, so the
    # passage's best other sentence fits beside the quote in the lead's 400 characters, as it would
    # not with its marks; the link still finds the page's own sentence
    quote = "核心工具是 Kaldi [1, 2, 3, 4]。"
    answer_ = "聲學模型用 TDNN 訓練，" + "細節" * 180 + " [8, 9, 10, 11, 12, 13]。"
    text = quote + "背景 [5, 6, 7]。" + answer_ + "[14]"
    result = SearchResult("q", Query("q", "q", [], [], False), [_hit(text, "a.md", "sec")])
    ranked = [ScoredSentence(0, i, s, 1, 1, 0, False) for i, s in ((0, quote), (2, answer_))]
    assert len(quote) + len(answer_) + 1 > 400
    reply = build_answer("q", result, Decision(True, 0.9, "", ranked[:1], {}, ranked))
    cited = reply.citations[0]
    assert cited.snippet.startswith("核心工具是 Kaldi。 … 聲學模型用 TDNN 訓練，細節")
    assert cited.snippet.endswith("細節。")       # the last sentence was a mark alone: nothing left out
    assert "[" not in reply.shown_text()
    assert "Kaldi%20%5B1" in cited.url          # the fragment is the page's own text, marks and all
    refused = build_answer("q", result, Decision(False, 0.1, "no", [], {}))
    assert refused.suggestions[0].snippet.startswith("核心工具是 Kaldi。 背景。")


def test_a_later_quote_is_not_filled_with_a_sentence_an_earlier_one_shows():
    # a talk's html page and its notes say the same: the second quote's passage fills with what the
    # first one has not shown yet
    shared = "模型大小是經過優化的 9 MB。"
    html = _hit("去噪模型用 DCCRN。" + shared, "html/a.html", "sec")
    notes = _hit("推論速度的 RTF 是 0.08。" + "在 CPU 上也能即時執行。" + "模型大小是經過優化的 9 MB [3]。", "notes/a.md", "")
    result = SearchResult("q", Query("q", "q", [], [], False), [html, notes])
    ranked = [ScoredSentence(0, 0, "去噪模型用 DCCRN。", 1, 1, 0, False), ScoredSentence(0, 1, shared, 1, 1, 0, False),
              ScoredSentence(1, 0, "推論速度的 RTF 是 0.08。", 1, 1, 0, False),
              ScoredSentence(1, 2, "模型大小是經過優化的 9 MB [3]。", 1, 1, 0, False),
              ScoredSentence(1, 1, "在 CPU 上也能即時執行。", 1, 1, 0, False)]
    quotes = [ranked[0], ranked[2]]
    reply = build_answer("q", result, Decision(True, 0.9, "", quotes, {}, ranked))
    first, second = (c.snippet for c in reply.citations)
    assert first == "去噪模型用 DCCRN。 模型大小是經過優化的 9 MB。"
    assert second == "推論速度的 RTF 是 0.08。 在 CPU 上也能即時執行。…"
    assert reply.shown_text().count("9 MB") == 1


def test_the_room_a_short_quote_leaves_goes_to_the_next_one():
    # the lead passage takes 16 of its 400 characters: the second quote shows the background
    # between its topic and its answer too, beyond its own 220
    lead = _hit("語音去噪的模型是 DCCRN。", "a.md", "sec")
    filler = "背景說明的句子寫在這裡，" * 24 + "。"
    second = _hit("去噪模型介紹。" + filler + "最後的模型大小是 9 MB。", "b.md", "")
    result = SearchResult("q", Query("q", "q", [], [], False), [lead, second])
    ranked = [ScoredSentence(0, 0, "語音去噪的模型是 DCCRN。", 1, 1, 0, False),
              ScoredSentence(1, 0, "去噪模型介紹。", 1, 1, 0, False),
              ScoredSentence(1, 2, "最後的模型大小是 9 MB。", 1, 1, 0, False),
              ScoredSentence(1, 1, filler, 1, 1, 0, False)]
    reply = build_answer("q", result, Decision(True, 0.9, "", [ranked[0], ranked[1]], {}, ranked))
    first, shown = (c.snippet for c in reply.citations)
    assert len(filler) > 220 and "9 MB" in shown and filler in shown
    assert len(first) + len(shown) <= 400 + 220 + 2        # the reply keeps its bound ("…" marks aside)


def test_fragment_of_markdown_text_and_of_an_anchor_that_is_already_a_fragment():
    from faq_bot.answer import cited_url

    frag = unquote(text_fragment("**小子集**是[方法](./a.md)。"))
    assert frag == ":~:text=小子集是方法"
    hit = _hit("模型大小是 9 MB。", "talk.html", ":~:text=%E6%A8%A1%E5%9E%8B")
    url = cited_url(hit, "模型大小是 9 MB。")
    assert url.count(":~:") == 1 and "&text=" in url      # two text directives in one fragment
    assert follow_up_context("那它呢？", "LSTM 有幾個門？") == "LSTM 有幾個門？"   # a string is one question


def test_markdown_escaping_leaves_numbers_and_words_as_written():
    from faq_bot.answer import escape_markdown

    assert escape_markdown("RTF 是 0.08，GPT-4 (2023)!") == "RTF 是 0.08，GPT-4 (2023)!"
    assert escape_markdown("[x](javascript:alert(1)) <script>") == "\\[x\\](javascript:alert(1)) \\<script\\>"
    assert escape_markdown("**粗** _斜_ `碼` ~~刪~~ &amp; a\\b") == \
        "\\*\\*粗\\*\\* \\_斜\\_ \\`碼\\` \\~\\~刪\\~\\~ \\&amp; a\\\\b"
    assert escape_markdown("# 標題\n1. 項目\n- 清單\n  > 引言\n+ 加") == "\\# 標題\n1\\. 項目\n\\- 清單\n  \\> 引言\n\\+ 加"


def test_an_answers_json_is_its_dict_made_once_and_a_changed_copy_makes_its_own():
    import dataclasses
    import json

    from faq_bot.answer import Answer, Citation

    answer = Answer("模型多大？", True, [Citation(1, "語音", "去噪", "https://x.org/a#b", "模型 9 MB，RTF 0.08。")])
    body = answer.to_json()
    assert json.loads(body) == answer.to_dict() and "模型 9 MB".encode() in body   # UTF-8, not \\u escapes
    assert answer.to_json() is body
    noted = dataclasses.replace(answer, note="written answer unavailable")
    assert json.loads(noted.to_json())["note"] == "written answer unavailable"
    copy = dataclasses.replace(answer)
    assert copy._json is None and copy == answer                   # the memo takes no part in equality
