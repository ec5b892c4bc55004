"""postag decodes jieba's part-of-speech HMM over arrays: every cut and tag must equal jieba's own."""
import jieba.posseg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faq_bot.postag import ArrayPOSTokenizer, ArrayViterbi
from faq_bot.textproc import WordCutter


@pytest.fixture(scope="module")
def taggers():
    cutter = WordCutter()
    return jieba.posseg.POSTokenizer(cutter._jieba), ArrayPOSTokenizer(cutter._jieba)


def tags(tagger, text: str) -> list[tuple[str, str]]:
    return [(p.word, p.flag) for p in tagger.cut(text)]


@pytest.mark.parametrize("text", [
    "語音去噪模型多大？推論速度如何？",         # Traditional: characters outside the HMM's tables
    "语音去噪模型多大？推理速度如何？",         # Simplified: inside them
    "鄭捷峰與劉尚霖的演講",                     # names jieba's HMM puts together
    "鼻嘎獸很可愛",
    "請問Whisper微調需要多少顯存，RTF 0.08 算快嗎",
    "蒸餾後的小模型效果如何",
    "檢索增強生成（RAG）的重新排序器（Reranker）怎麼選？",
    "罕",                                        # one character
])
def test_the_array_tagger_cuts_and_tags_as_jieba_does(taggers, text):
    jieba_tagger, array_tagger = taggers
    assert tags(array_tagger, text) == tags(jieba_tagger, text)


def test_the_decoder_returns_jiebas_score_and_states_for_a_run_of_unknown_characters():
    """The decoding itself, on runs where ties decide: 獸 and 劉 are not in the table of possible
    states (all 256 are tried) and most states cannot emit them; no state emits 龘靐齉."""
    from jieba.posseg import char_state_tab_P, emit_P, start_P, trans_P
    from jieba.posseg.viterbi import viterbi

    decode = ArrayViterbi()
    for run in ["鼻嘎獸", "劉尚霖", "噪音抑制", "语音", "x光片", "龘靐齉"]:
        assert decode(run) == viterbi(run, char_state_tab_P, start_P, trans_P, emit_P), run


CHARACTERS = "語音去噪模型的大小是多少推論速度鄭捷峰劉尚霖鼻嘎獸可愛语音识别们檢索增強生成器排序台灣護照龘靐齉" \
             "，。？！（）ABCxyz019 -"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=CHARACTERS, min_size=1, max_size=14))
def test_any_text_is_tagged_as_jieba_tags_it(taggers, text):
    jieba_tagger, array_tagger = taggers
    assert tags(array_tagger, text) == tags(jieba_tagger, text)


def test_the_array_tagger_never_calls_jiebas_own_decoder(taggers, monkeypatch):
    """Its speed rests on overriding posseg's private `__cut`: were that renamed in a later jieba,
    the output would stay the same and only this test would say so."""
    jieba_tagger, array_tagger = taggers
    text = "鼻嘎獸很可愛"                        # 鼻嘎獸 goes through the HMM
    expected = tags(jieba_tagger, text)

    def refuse(*args, **kwargs):
        raise RuntimeError("jieba's Python Viterbi was called")

    monkeypatch.setattr(jieba.posseg, "viterbi", refuse)
    with pytest.raises(RuntimeError, match="Python Viterbi"):
        tags(jieba_tagger, text)                  # the patch reaches jieba's own decoding
    assert tags(array_tagger, text) == expected
