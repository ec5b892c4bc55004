"""jieba's part-of-speech tagger with its HMM decoded over arrays: the same tags, in a fifth of the time.

jieba.posseg decodes a run of characters its dictionary does not cut (a name, a term) with a
Viterbi search over 256 (position, tag) states, in Python loops. Its character tables are
Simplified Chinese: a character only Traditional Chinese writes (語, 們, 說: 252 of the 657
distinct characters of Speech-Processing.md) is not in its table of possible states, so every one
of the 256 states is tried against every state before it, ~65,000 steps a character; about one
labelled question in four has such a run (`WordCutter.nouns`). Here each step is one array
operation: tagging 3,200 lines of the corpus took 0.5 s instead of 2.7 s, and the Python of a
new answer besides the model's encode 2.05 ms instead of 2.45 ms (398 questions, in-process).

The decoding is the same, step for step, so the result is identical, ties included: the scores
are added in the same order in float64, and where jieba's `max()` over (score, state) pairs breaks
a tie by the larger state, the states are kept in descending order and `argmax` takes the first
(a state that cannot emit a character scores -3.14e100 for it, which swamps the small
differences before it: ties are common, not rare).
tests/test_core_postag.py compares the two on the portal's kinds of text.
"""
from __future__ import annotations

from typing import Iterator

import jieba
import jieba.posseg as posseg
import numpy as np
from jieba.posseg import char_state_tab_P, emit_P, start_P, trans_P
from jieba.posseg.viterbi import MIN_FLOAT


class ArrayViterbi:
    """jieba.posseg.viterbi.viterbi over numpy arrays (one instance holds the model's tables)."""

    def __init__(self) -> None:
        self.states = sorted(trans_P, reverse=True)      # first of equals = the larger state, as jieba's max()
        self._row = {s: i for i, s in enumerate(self.states)}
        n = len(self.states)
        self._trans = np.full((n, n), -np.inf)
        self._follows = np.zeros((n, n), dtype=bool)
        for a, nexts in trans_P.items():
            for b, p in nexts.items():
                self._trans[self._row[a], self._row[b]] = p
                self._follows[self._row[a], self._row[b]] = True
        self._has_next = self._follows.any(axis=1)
        self._start = np.array([start_P[s] for s in self.states])
        self._emit = [emit_P[s] for s in self.states]
        self._all = np.ones(n, dtype=bool)

    def _allowed(self, char: str) -> np.ndarray:
        states = char_state_tab_P.get(char)
        if states is None:
            return self._all
        mask = np.zeros(len(self.states), dtype=bool)
        mask[[self._row[s] for s in states]] = True
        return mask

    def _emission(self, char: str) -> np.ndarray:
        return np.array([e.get(char, MIN_FLOAT) for e in self._emit])

    def __call__(self, obs: str) -> tuple[float, list[tuple[str, str]]]:
        """(score, the state of each character), as jieba.posseg.viterbi.viterbi returns them."""
        reached = self._allowed(obs[0])
        scores = self._start + self._emission(obs[0])
        back: list[np.ndarray] = []
        for char in obs[1:]:
            prev = np.flatnonzero(reached & self._has_next)
            expected = self._follows[prev].any(axis=0)
            allowed = self._allowed(char) & expected
            if not allowed.any():
                allowed = expected if expected.any() else self._all
            now = np.flatnonzero(allowed)
            table = (scores[prev][:, None] + self._trans[np.ix_(prev, now)]) + self._emission(char)[now][None, :]
            best = table.argmax(axis=0)          # raises on no previous state, as jieba's max() does
            scores = np.full(len(self.states), -np.inf)
            scores[now] = table[best, np.arange(len(now))]
            came_from = np.zeros(len(self.states), dtype=np.intp)
            came_from[now] = prev[best]
            back.append(came_from)
            reached = allowed
        last = np.flatnonzero(reached)
        state = int(last[scores[last].argmax()])
        score = float(scores[state])
        route = [state]
        for came_from in reversed(back):
            state = int(came_from[state])
            route.append(state)
        return score, [self.states[i] for i in reversed(route)]


class ArrayPOSTokenizer(posseg.POSTokenizer):
    """jieba.posseg.POSTokenizer decoding with ArrayViterbi; everything else (the dictionary's route,
    the tags of dictionary words) is jieba's own."""

    def __init__(self, tokenizer: jieba.Tokenizer | None = None) -> None:
        super().__init__(tokenizer)
        self.viterbi = ArrayViterbi()

    def _POSTokenizer__cut(self, sentence: str) -> Iterator[posseg.pair]:   # posseg's private __cut
        _, pos_list = self.viterbi(sentence)
        begin, nexti = 0, 0
        for i, char in enumerate(sentence):
            pos = pos_list[i][0]
            if pos == "B":
                begin = i
            elif pos == "E":
                yield posseg.pair(sentence[begin:i + 1], pos_list[i][1])
                nexti = i + 1
            elif pos == "S":
                yield posseg.pair(char, pos_list[i][1])
                nexti = i + 1
        if nexti < len(sentence):
            yield posseg.pair(sentence[nexti:], pos_list[nexti][1])
