"""Calibrate the abstention thresholds on a question file (default ../shared/eval/dev.yaml).

Prints, for every question, the signals `retrieve.decide_answerable` looks at (best cosine,
IDF-weighted coverage of the question's key words, unknown Latin-script terms) and where the
evidence ranks, then a grid of (min_dense, min_coverage, strong_dense) settings with the
abstention rate on out-of-scope questions and the false-abstention rate on answerable ones.

    python bench/calibrate.py --index /tmp/idx_full [--questions ../shared/eval/dev.yaml]
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq_bot.config import load_config, with_overrides  # noqa: E402
from faq_bot.eval import HIT_CHARS, load_items, match_key  # noqa: E402
from faq_bot.retrieve import Searcher, decide_answerable  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True)
    parser.add_argument("--config")
    parser.add_argument("--questions", default=str(ROOT.parent / "shared" / "eval" / "dev.yaml"))
    args = parser.parse_args()
    config = with_overrides(load_config(args.config), index_dir=args.index)
    searcher = Searcher.open(config)
    items = load_items(args.questions)
    rows = []
    for item in items:
        result = searcher.search(item.question, k=10)
        rank = None
        if item.answerable:
            ev = match_key(item.evidence)
            rank = next((i for i, h in enumerate(result.hits, 1) if ev in match_key(h.chunk.text[:HIT_CHARS])), None)
        s = result.signals
        rows.append((item, s, rank))
        print(f"{item.kind:>10} dense={s.dense_top:.3f} cov={s.coverage:.2f} bm25={s.bm25_top:5.1f} "
              f"missing={','.join(s.missing_names) or '-':<14} ev_rank={rank} "
              f"{'ANS' if result.answerable else 'abst'}  {item.question[:50]}")

    settings = searcher.settings
    print(f"\ncurrent settings: min_dense={settings.abstain_min_dense} min_coverage={settings.abstain_min_coverage} "
          f"min_coverage_latin={settings.abstain_min_coverage_latin} strong_dense={settings.abstain_strong_dense}")
    print("\nmin_dense min_cov min_cov_latin strong  abstention  false_abst")
    grid = itertools.product([0.80, 0.82, 0.83, 0.84, 0.85], [0.2, 0.3, 0.36, 0.4, 0.5],
                             [0.0, 0.1, 0.2], [0.88, 0.89, 0.90, 0.91, 1.0])
    results = []
    for min_dense, min_cov, min_cov_latin, strong in grid:
        trial = dataclasses.replace(settings, abstain_min_dense=min_dense, abstain_min_coverage=min_cov,
                                    abstain_min_coverage_latin=min_cov_latin, abstain_strong_dense=strong)
        oos = [not decide_answerable(s, trial)[0] for item, s, _ in rows if not item.answerable]
        ans = [not decide_answerable(s, trial)[0] for item, s, _ in rows if item.answerable]
        results.append((sum(oos) / max(len(oos), 1), -sum(ans) / max(len(ans), 1),
                        min_dense, min_cov, min_cov_latin, strong))
    for abst, neg_false, *values in sorted(results, reverse=True)[:20]:
        print("{:9.2f} {:7.2f} {:13.2f} {:6.2f}".format(*values) + f"  {abst:10.2f}  {-neg_false:10.2f}")


if __name__ == "__main__":
    main()
