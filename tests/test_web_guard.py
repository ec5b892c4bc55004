"""The request checks on their own: JSON nesting counted without parsing, bodies decoded with a
message, history turns checked like questions. (Through HTTP: test_web_api.)"""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faq_bot.retrieve import QuestionError, QuestionTooLong
from faq_bot.web.guard import (MAX_HISTORY_TURNS, MAX_JSON_DEPTH, RequestError, check_depth, check_history,
                               error_status, json_depth, parse_json)


@pytest.mark.parametrize("body, depth", [
    (b'{"question": "RAG"}', 1),
    (b'{"question": "RAG", "history": [{"role": "user", "content": "x"}]}', 3),
    (b'"[[[[{{{"', 0),                                  # brackets inside a string do not count
    (b'["a\\"[[[", ["b"]]', 2),                         # nor after an escaped quote
    (b'["\\\\", [[1]]]', 3),                             # an escaped backslash ends before the quote
    (b"[" * 5000, 5000),
    (b"[]" * 5000, 1),
    (b"]]]][", 1),
    (b"]]]][[[[[[]", 6),
    (b"", 0),
    (b"\xff\xfe[[", 2),                                  # not UTF-8: still counted, decoded later
])
def test_json_depth_counts_nesting_outside_strings(body, depth):
    assert json_depth(body) == depth


@pytest.mark.parametrize("body", [b'"' + b'\\"' * 200_000, b'"' * 400_001, b'["' + b"\\" * 400_001])
def test_json_depth_reads_pathological_strings_in_one_pass(body):
    """Unterminated strings and runs of escapes: each string is matched once (no quadratic retries)."""
    assert json_depth(body) <= 1


def test_depth_is_refused_over_the_bound_with_the_depth_found():
    check_depth(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    with pytest.raises(RequestError, match=f"nested {MAX_JSON_DEPTH + 1} levels deep") as caught:
        check_depth(b"[" * (MAX_JSON_DEPTH + 1))
    assert caught.value.status == 400


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b","]), max_size=80).map(b"".join))
def test_the_bracket_count_shortcut_refuses_exactly_what_the_scan_refuses(body):
    """Bodies with few brackets skip the scan; the answer is the same either way."""
    too_deep = json_depth(body) > MAX_JSON_DEPTH
    try:
        check_depth(body)
        refused = False
    except RequestError:
        refused = True
    assert refused == too_deep


def test_brackets_inside_a_string_send_a_body_to_the_scan_which_lets_it_through():
    check_depth(b'{"question": "' + b"[" * 100 + b'"}')


@pytest.mark.parametrize("body, message", [
    (b"{not json", "malformed JSON"),
    (b'{"question": "\xff"}', r"not UTF-8 \(byte 14\)"),
    (b"[" * 100_000, "nested too deep"),      # parse_json alone, without BodyGuard in front
])
def test_parse_json_says_what_is_wrong(body, message):
    with pytest.raises(RequestError, match=message) as caught:
        parse_json(body)
    assert caught.value.status == 400


def test_parse_json_keeps_lone_surrogates_for_the_question_check():
    assert parse_json(b'{"question": "\\ud800"}') == {"question": "\ud800"}


def test_history_gives_the_earlier_questions_in_every_accepted_shape():
    history = ["語音去噪模型多大？", {"role": "assistant", "content": ["any", {"shape": 1}]},
               {"role": "user", "content": " 混合檢索\n是怎麼做的 "}, ["LSTM 裡面有哪幾個門？", "..."], "", "  "]
    # cleaned as questions are (NFKC: the full-width ？ is ?; white space collapsed)
    assert check_history(history, 2000) == ["語音去噪模型多大?", "混合檢索 是怎麼做的", "LSTM 裡面有哪幾個門?"]
    assert check_history(None, 2000) == []


def test_only_the_last_turns_of_a_long_history_are_read():
    history = [1] + [f"問題 {i}" for i in range(MAX_HISTORY_TURNS)]       # the bad first turn is never read
    assert check_history(history, 2000)[-1] == f"問題 {MAX_HISTORY_TURNS - 1}"
    assert len(check_history(history, 2000)) == MAX_HISTORY_TURNS


@pytest.mark.parametrize("history, error, message", [
    ("RAG", RequestError, "history must be a list"),
    ({"role": "user"}, RequestError, "history must be a list"),
    (["RAG", 3], RequestError, "history turn 2 must be an earlier question"),
    ([{"role": "user", "content": None}], RequestError, "history turn 1 must be"),
    ([[]], RequestError, "history turn 1 must be"),
    ([[1, "answer"]], RequestError, "history turn 1 must be"),
    (["語音\udc00"], QuestionError, "history turn 1: the question holds invalid Unicode"),
    ([{"role": "assistant", "content": "答\udfff"}], QuestionError,
     "history turn 1 holds invalid Unicode (an unpaired surrogate, U+DFFF, at character 2 of its text)"),
    ([{"role": "user", "content": "RAG", "note\ud800": 1}], QuestionError, "history turn 1 holds invalid Unicode"),
    (["RAG", ["問", {"x": ["\udc00"]}]], QuestionError, "history turn 2 holds invalid Unicode"),
    (["\ud800"] + ["RAG"] * (MAX_HISTORY_TURNS + 5), QuestionError, "history turn 1 holds invalid Unicode"),
    (["語" * 31, "語" * 41], QuestionTooLong, "history turn 2: the question is 41 characters long; the limit is 40"),
])
def test_bad_history_is_refused_with_the_turn_and_what_to_change(history, error, message):
    with pytest.raises(error, match=re.escape(message)) as caught:
        check_history(history, 40)
    assert caught.type is error


@pytest.mark.parametrize("exc, status", [
    (RequestError(413, "body"), 413), (QuestionTooLong("long"), 413), (QuestionError("empty"), 400),
    (RequestError(400, "nested"), 400),
])
def test_error_status(exc, status):
    assert error_status(exc) == status


def test_a_gradio_chat_payload_is_well_within_the_depth_bound():
    """The deepest body a real client sends: Gradio's queue payload with a chat history."""
    payload = {"data": ["那它呢？", [{"role": "user", "metadata": None,
                                     "content": [{"type": "text", "text": "語音去噪模型多大？"}], "options": None}]],
               "event_data": None, "fn_index": 1, "trigger_id": 4, "session_hash": "x"}
    assert json_depth(json.dumps(payload).encode()) == 6 < MAX_JSON_DEPTH
