"""Fit the answer policy for one embedding model, with cross-validation, on question files
(default: ../shared/eval/dev.yaml and the check sets in bench/questions/), and optionally store it in
faq_bot/calibration/.

Every question is searched once (as `answer()` does, follow-ups with their history). Then, for
each of K folds (stratified by kind), on the other folds only:
  1. two models over policy.SENTENCE_FEATURES, trained on the sentences of the top passages of
     answerable questions (a sentence is positive when it holds the evidence phrase): the sentence
     model, a logistic regression pooled over all of them (its probability for the best sentence is
     a signal of the decision), and the quote model, a conditional logistic regression that ranks
     each question's sentences against each other (it chooses what the answer quotes);
  2. the decision model: a logistic regression over policy.FEATURES (answerable vs oos/oos-near);
  3. a threshold per language (English / Chinese questions) that keeps false abstention at most
     --max-false-abstention on those folds, refusing as many unanswerable questions as possible;
  4. the small-talk threshold (smalltalk.SmallTalkReader): SMALL_TALK_MARGIN above the nearest of
     the short answerable questions that stand alone to a small-talk phrase;
and the held-out fold is scored with what was fitted without it. The report gives the held-out
figures (pooled over folds) by kind and by question file, beside the fit on all questions. --write
stores the fit on all questions, with the held-out figures in its notes.

    python bench/calibrate.py --index DIR [--questions FILE ...] [--folds 5] [--draws 8] [--write]
"""
from __future__ import annotations

import argparse
import sys
import time
from copy import copy
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq_bot.answer import build_answer, points_back, searched_question  # noqa: E402
from faq_bot.calibrate import (  # noqa: E402
    choose_threshold, fit_conditional_logistic, fit_logistic, standardise, stratified_folds)
from faq_bot.config import load_config, with_overrides  # noqa: E402
from faq_bot.eval import load_items  # noqa: E402
from faq_bot.policy import (  # noqa: E402
    CALIBRATION_DIR, FEATURES, PASSAGE_FEATURES, SENTENCE_FEATURES, Calibration, Decision, LogisticModel,
    calibration_name, ScoredSentence, decision_features, passage_values, quotes_for, rank_sentences, read_sentences,
    ruled_out)
from faq_bot.retrieve import Searcher, check_question  # noqa: E402
from faq_bot.smalltalk import SMALL_TALK_MARGIN, small_talk  # noqa: E402
from faq_bot.textproc import eval_key  # noqa: E402

# L2 penalties: the decision model has ~220 labelled questions, the sentence models ~9,000 sentences.
# (Decision L2 3 / 10 / 30 on the four files, bound 0.02, 4 fold draws: abstention 0.885 / 0.905 / 0.885.
# Quote model L2 0.1 / 1 / 3 / 10, 8 draws, quoting by it alone: answer@evidence 0.800 / 0.800 /
# 0.799 / 0.800.)
DECISION_L2 = 10.0
SENTENCE_L2 = 1.0
QUOTE_L2 = 1.0
PASSAGE_L2 = 1.0


# The policy is fitted on every labelled question: dev.yaml, and the check sets written over the
# pages dev.yaml never touches (bench/questions/). The product is measured on such pages, and a
# policy fitted on dev.yaml's 104 questions placed its thresholds on few of them: 222 questions,
# 5 folds, mean of 4 fold draws, the bound below at 0.02, held out: answer@evidence 0.774, false
# abstention 0.023 (at most 0.037 in a kind), abstention 0.905; dev.yaml alone at 0.02: 0.800 /
# 0.047 (paraphrase 0.060) / 0.842, no better than at 0.
# Named one by one: a new check set put in bench/questions/ stays blind until it is added here.
# Check set D (60 questions written blind on 2026-12-05, its header gives what they scored then)
# joined them once scored: its fresh paraphrases showed the policy refusing answerable questions
# for a visitor's own words (false abstention 0.114 blind). Check set E (60 more, written blind the
# same day) joined them once scored: 0.886 / 0.023 / 0.750 blind, its on-topic questions about a
# detail the portal does not give answered (4 of 11). With E, held out over the 342 (8 draws) with
# aaa820b's code: 0.846 / 0.024 / 0.891, against 0.844 / 0.021 / 0.925 over the 282 without it
# (abstention 0.906 once names must start a word, textproc.NameText; 0.911 once a follow-up's
# earlier turns count in policy.unknown_share).
# Check sets F, G, H and I (220 questions written blind on 2026-12-05; English, code-mixed colloquial
# Chinese, and I in dev.yaml's proportions) joined them once each had been scored blind (their
# headers and bench/README.md give those figures): every one showed on-topic questions about a
# detail the portal does not give answered (I: 0 of 5 refused), a class the 342 hold too few of to
# teach the decision (policy.amount_missing moved nothing fitted on them). Held out over the 562
# with 5878a26's code (8 draws): 0.812 / 0.024 / 0.748, against the 342's 0.843 / 0.026 / 0.893
# and, for the four sets scored blind by the policy fitted on the 342, 0.802 / 0.036 / 0.770 pooled
# with the 342's held-out figures.
DEFAULT_QUESTIONS = [str(ROOT.parent / "shared" / "eval" / "dev.yaml"),
                     *(str(ROOT / "bench" / "questions" / name)
                       for name in ("beyond-dev-a.yaml", "beyond-dev-b.yaml", "followups-c.yaml",
                                    "beyond-dev-d.yaml", "beyond-dev-e.yaml", "beyond-dev-f.yaml",
                                    "beyond-dev-g.yaml", "beyond-dev-h.yaml", "beyond-dev-i.yaml"))]
# How many answerable questions of the training folds a threshold may refuse, to refuse more of the
# unanswerable ones. On the four files, 5 folds, mean of 4 fold draws, held out (answer@evidence /
# false abstention / abstention): 0 -> 0.782 / 0.009 / 0.838; 0.01 -> 0.781 / 0.012 / 0.858;
# 0.02 -> 0.774 / 0.023 / 0.905; 0.03 -> 0.768 / 0.034 / 0.932 but english 0.054. 0.02 is the
# smallest bound at which abstention reaches issue 7's 0.90 with every kind's false abstention
# under its 0.05.
MAX_FALSE_ABSTENTION_TRAIN = 0.02


def sentence_holds_evidence(sentence: ScoredSentence, evidence: str) -> bool:
    """The sentence itself holds the evidence phrase. (Labelling by the passage quoted around it
    instead, as before 2026-12-02, also marks its neighbours, which blurs what an answering
    sentence looks like. dev.yaml, RRF 60, evidence in the reply held out over the same 6 fold
    draws: quoting the first three passages, 0.800 with the passage label and 0.802 with this one;
    with a 2 + 1 quote choice, 0.802 and 0.810.)"""
    return bool(evidence) and evidence in eval_key(sentence.text)


def fit_model(names: tuple[str, ...], x: np.ndarray, y: np.ndarray, l2: float) -> LogisticModel:
    mean, scale = standardise(x)
    w, b = fit_logistic((x - mean) / scale, y, l2=l2)
    return LogisticModel(names, tuple(map(float, w)), tuple(map(float, mean)), tuple(map(float, scale)), float(b))


def fit_ranking_model(names: tuple[str, ...], groups: list[tuple[np.ndarray, np.ndarray]], l2: float) -> LogisticModel:
    """A model that ranks each question's candidates (sentences for the quote model, passages for
    the passage model): weights from the conditional logistic regression over each question's
    candidates (`groups`), then one scale and a bias fitted over all of them, so that its score
    still reads as a probability. The quote model, held out (222 questions, 5 folds, 8 draws), quoting by it instead
    of the pooled sentence model: answer@evidence 0.784 -> 0.800 (follow-ups 0.730 -> 0.758, English
    0.868 -> 0.885, Simplified 0.849 -> 0.875, paraphrases 0.726 -> 0.736), with the decision still
    reading the pooled model (false abstention 0.024 and abstention 0.909 unchanged); letting the
    decision read the quote model's score too cost abstention (0.885). Grouping by passage instead
    of by question: 0.785."""
    x = np.vstack([g[0] for g in groups])
    y = np.concatenate([g[1] for g in groups])
    mean, scale = standardise(x)
    w = fit_conditional_logistic([((gx - mean) / scale, gy) for gx, gy in groups], l2=l2)
    a, b = fit_logistic(((x - mean) / scale @ w)[:, None], y, l2=0.0)
    return LogisticModel(names, tuple(map(float, w * a[0])), tuple(map(float, mean)), tuple(map(float, scale)), float(b))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True)
    parser.add_argument("--config")
    parser.add_argument("--questions", nargs="+", default=DEFAULT_QUESTIONS, metavar="FILE",
                        help="question files (default: dev.yaml and the check sets in bench/questions/)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--draws", type=int, default=1,
                        help="cross-validate over this many fold draws and report the mean (default 1)")
    parser.add_argument("--max-false-abstention", type=float, default=MAX_FALSE_ABSTENTION_TRAIN,
                        help=f"bound on the training folds (default {MAX_FALSE_ABSTENTION_TRAIN})")
    parser.add_argument("--retrieval-order", action="store_true",
                        help="quote passages in retrieval's order (no passage model), to compare")
    parser.add_argument("--write", action="store_true", help="store the fit on all questions")
    args = parser.parse_args()
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    if args.draws < 1:
        parser.error("--draws must be at least 1")
    config = with_overrides(load_config(args.config), index_dir=args.index)
    searcher = Searcher.open(config)
    items, sources = [], []
    for path in args.questions:
        loaded = load_items(path)
        items += loaded
        sources += [Path(path).name] * len(loaded)
    started = time.perf_counter()
    # as answer() searches: the checked question without its courtesy, with the turns it leans on
    searched = [searched_question(check_question(item.question, 10 ** 6), list(item.history)) for item in items]
    results = [searcher.search(text, k=10, context=context) for text, context in searched]
    print(f"searched {len(items)} questions in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    y = np.array([int(item.answerable) for item in items])
    evidence = [eval_key(item.evidence) if item.answerable else "" for item in items]
    # small talk as answer() reads it: by its phrases (a question file may hold some: they are refused),
    # else by meaning, for a message that stands alone and may be small talk at all
    # (`SmallTalkReader.closeness`); the threshold is set just above the closest answerable question
    by_phrase = [small_talk(item.question, in_conversation=context is not None) is not None
                 for item, (_, context) in zip(items, searched)]
    closeness, nearness = [], []
    for r, (text, context), phrase in zip(results, searched, by_phrase):
        standalone = not phrase and context is None
        near = searcher.small_talk.closeness(text, r, points_back(text)) if standalone else None
        closeness.append(near[1] if near else None)
        # how near it is to small talk whether or not it may be small talk by meaning: no answerable
        # question passes that gate (each names something), so the threshold is fitted on this
        near = searcher.small_talk.nearness(text, r, points_back(text)) if standalone else None
        nearness.append(near[1] if near else None)
    read = [read_sentences(result) for result in results]
    sentence_x = [np.array([[s.values()[f] for f in SENTENCE_FEATURES] for s in sents]).reshape(-1, len(SENTENCE_FEATURES))
                  for sents in read]
    sentence_y = [np.array([sentence_holds_evidence(s, evidence[i]) for s in sents], dtype=int)
                  for i, sents in enumerate(read)]

    def replies(sentence: LogisticModel, quote: LogisticModel, passage: LogisticModel | None,
                idx: list[int]) -> dict[int, tuple[bool, int, dict]]:
        """For each item: the reply (if answered) holds the evidence, its citations, its features
        (as policy.decide: features from the sentence model, quotes from the quote and passage models)."""
        out = {}
        for i in idx:
            scored = rank_sentences([copy(s) for s in read[i]], sentence)
            features = decision_features(results[i], scored)
            ranked = rank_sentences(scored, quote)
            reply = build_answer(items[i].question, results[i],
                                 Decision(True, 1.0, "", quotes_for(results[i], ranked, passage), {}, ranked))
            out[i] = (bool(evidence[i]) and evidence[i] in eval_key(reply.shown_text()), len(reply.citations),
                      features)
        return out

    def fit(train: list[int]) -> Calibration:
        answerable = [i for i in train if y[i]]
        if not answerable or len(answerable) == len(train):
            sys.exit("calibrate: the question files need answerable and unanswerable questions in every fold")
        x = np.vstack([sentence_x[i] for i in answerable])
        t = np.concatenate([sentence_y[i] for i in answerable])
        sentence_model = fit_model(SENTENCE_FEATURES, x, t, SENTENCE_L2)
        quote_model = fit_ranking_model(SENTENCE_FEATURES, [(sentence_x[i], sentence_y[i]) for i in answerable], QUOTE_L2)
        passage_model = None
        if not args.retrieval_order:
            groups = []
            for i in answerable:
                values = passage_values(results[i], rank_sentences([copy(s) for s in read[i]], quote_model))
                ranks = sorted(values)
                groups.append((np.array([[values[r][f] for f in PASSAGE_FEATURES] for r in ranks]).reshape(-1, len(PASSAGE_FEATURES)),
                               np.array([int(evidence[i] in eval_key(results[i].hits[r].chunk.text)) for r in ranks])))
            passage_model = fit_ranking_model(PASSAGE_FEATURES, groups, PASSAGE_L2)
        trial = replies(sentence_model, quote_model, passage_model, train)
        features = np.array([[trial[i][2][f] for f in FEATURES] for i in train])
        decision = fit_model(FEATURES, features, y[train], DECISION_L2)
        p = [decision.probability(trial[i][2]) for i in train]
        pooled = choose_threshold(p, y[train], args.max_false_abstention)
        thresholds = {}
        for language in ("zh", "en"):
            group = [j for j, i in enumerate(train) if ("en" if results[i].query.latin else "zh") == language]
            labels = y[[train[j] for j in group]]
            # a language with questions of one class only (or none) cannot place its own threshold
            thresholds[language] = (choose_threshold([p[j] for j in group], labels, args.max_false_abstention)
                                    if len(set(labels.tolist())) == 2 else pooled)
        # above every answerable question (taking one of those for small talk is a false refusal)
        close = [nearness[i] for i in train if nearness[i] is not None and y[i]]
        small_talk = max(close) + SMALL_TALK_MARGIN if close else None
        return Calibration(model="", sentence=sentence_model, decision=decision, thresholds=thresholds,
                           quote=quote_model, passage=passage_model, small_talk=small_talk)

    def predict(calibration: Calibration, idx: list[int]) -> dict[int, tuple[bool, bool]]:
        out = {}
        for i, (has, _, features) in replies(calibration.sentence, calibration.quote, calibration.passage, idx).items():
            answered = (calibration.probability(features) >= calibration.threshold(results[i].query.latin)
                        and ruled_out(results[i], features) is None and not by_phrase[i]
                        and not (calibration.small_talk is not None and closeness[i] is not None
                                 and closeness[i] >= calibration.small_talk))
            out[i] = (answered, answered and has)
        return out

    draws: list[dict[int, tuple[bool, bool]]] = []
    for draw in range(args.draws):        # draw 0: the folds in file order; then shuffled ones
        held: dict[int, tuple[bool, bool]] = {}
        for fold in stratified_folds([item.kind for item in items], args.folds, seed=draw or None):
            train = [i for i in range(len(items)) if i not in fold]
            held.update(predict(fit(train), fold))
        draws.append(held)
    held = draws[0]
    everything = list(range(len(items)))
    full = fit(everything)
    fitted = predict(full, everything)

    def figures(pred: dict) -> dict[str, dict[str, float]]:
        out = {}
        groups = ["all"] + sorted({item.kind for item in items})
        if len(set(sources)) > 1:
            groups += list(dict.fromkeys(sources))
        for kind in groups:
            idx = [i for i, item in enumerate(items) if kind in ("all", item.kind, sources[i])]
            ans = [i for i in idx if y[i]]
            oos = [i for i in idx if not y[i]]
            row: dict[str, float] = {}
            if ans:
                row["answer@evidence"] = sum(pred[i][1] for i in ans) / len(ans)
                row["false_abstention"] = sum(not pred[i][0] for i in ans) / len(ans)
            if oos:
                row["abstention"] = sum(not pred[i][0] for i in oos) / len(oos)
            row["n"] = len(idx)
            out[kind] = row
        return out

    per_draw = [figures(h) for h in draws]
    held_figures = {kind: {m: sum(f[kind][m] for f in per_draw) / len(per_draw) for m in row}
                    for kind, row in per_draw[0].items()}
    fit_figures = figures(fitted)
    print(f"\n{len(items)} questions, {args.folds}-fold cross-validation"
          + (f", mean of {args.draws} fold draws" if args.draws > 1 else "")
          + ": held-out figures (fit on all in brackets)")
    print(f"{'kind / file':>19} {'n':>4}  {'answer@evidence':>22}  {'false abstention':>22}  {'abstention':>22}")
    for kind, row in held_figures.items():
        cells = [f"{row[m]:>9.3f} (fit {fit_figures[kind][m]:.3f})" if m in row else "-"
                 for m in ("answer@evidence", "false_abstention", "abstention")]
        print(f"{kind:>19} {int(row['n']):>4}  " + "  ".join(f"{c:>22}" for c in cells))

    if args.draws > 1:
        print("  per draw, all questions: " + "; ".join(
            " / ".join(f"{f['all'][m]:.3f}" for m in ("answer@evidence", "false_abstention", "abstention"))
            for f in per_draw) + "  (answer@evidence / false abstention / abstention)")
    print("\nfit on all: thresholds "
          + ", ".join(f"{k} {v:.3f}" for k, v in full.thresholds.items())
          + (f"; small talk at cosine {full.small_talk:.3f}" if full.small_talk is not None else "; no small talk by meaning")
          + (f" ({sum(c is not None for c in closeness)} questions may be small talk by meaning; the nearest "
             f"answerable one {max(c for c, a in zip(nearness, y) if c is not None and a):.3f})"
             if any(c is not None and a for c, a in zip(nearness, y)) else ""))
    for title, model in (("sentence model", full.sentence), ("quote model", full.quote),
                         ("passage model", full.passage), ("decision model", full.decision)):
        if model is None:
            continue
        print(f"  {title} (weight per standard deviation):")
        for name, value, mu in zip(model.features, model.weights, model.mean):
            print(f"    {name:>30}: {value:+.3f}  (mean {mu:.3f})")
    print("\nheld-out misses (fold draw 0):")
    for i, item in enumerate(items):
        answered, good = held[i]
        if (y[i] and not good) or (not y[i] and answered):
            what = "answered (should abstain)" if not y[i] else "abstained" if not answered else "reply lacks evidence"
            print(f"  [{sources[i]}, {item.kind}] {item.question[:60]} -> {what}")

    if args.write:
        manifest = searcher.index.manifest
        calibration = Calibration(
            model=f"{manifest.backend}:{manifest.model}", sentence=full.sentence, decision=full.decision,
            thresholds=full.thresholds, quote=full.quote, passage=full.passage, small_talk=full.small_talk,
            notes={"fitted_on": ", ".join(f"{name} ({sources.count(name)})" for name in dict.fromkeys(sources))
                   + f": {len(items)} questions",
                   "fitted_at": time.strftime("%Y-%m-%d"), "folds": args.folds, "fold_draws": args.draws,
                   "l2": {"decision": DECISION_L2, "sentence": SENTENCE_L2, "quote": QUOTE_L2, "passage": PASSAGE_L2},
                   "max_false_abstention_train": args.max_false_abstention,
                   "held_out": {k: {m: round(v, 3) for m, v in row.items()} for k, row in held_figures.items()}})
        path = CALIBRATION_DIR / f"{calibration_name(manifest.backend, manifest.model)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(calibration.to_json() + "\n", encoding="utf-8")
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
