"""Query latency of faq-bot in a warm process, as a ratio to one bare query encode of the same model.

One process loads the index (`Searcher.open`, as the app does), runs a few warm-up questions, then
goes through the questions of a question file (default ../shared/eval/dev.yaml) round after round
until it has at least --samples timings of each of:

- search:  `searcher.search(q)` (analyse, encode, FAISS over chunks and sentences, BM25, fusion,
           diversify, sentence cosines);
- encode:  `searcher.embedder.embed_queries([q])` alone (the same model instance, the same question);
- answer:  `faq_bot.answer.answer(searcher, q)` (what the app calls: search + the answer policy's
           sentence scoring and decision + citations).

The three are interleaved question by question, so a slow spell of the machine hits all of them.
It prints p50/p95 (and mean, max) of each and the ratios search/encode and answer/encode, with the
target of issue 7 (search and answer p50 <= 1.5x encode p50). Figures are measured in this run on this
machine; nothing here is a test.

    python bench/latency.py --index /tmp/idx_full [--samples 200] [--json]
    python bench/latency.py                       # uses bench/out/index (built by bench/quality.py)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from common import (
    DEFAULT_QUESTIONS,
    OUT,
    OtherLoad,
    has_index,
    log,
    machine,
    machine_line,
    make_config,
    percentile,
    table,
    target_line,
    write_json,
)

from faq_bot.answer import answer
from faq_bot.eval import load_items
from faq_bot.retrieve import Searcher

TARGET_P50_RATIO = 1.5   # issue 7: search and answer p50 <= 1.5x one bare query encode
WARMUP_QUESTIONS = 5


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95),
            "mean_ms": statistics.fmean(ms), "max_ms": max(ms)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", metavar="DIR", default=str(OUT / "index"),
                        help="product index (default bench/out/index)")
    parser.add_argument("--config", metavar="FILE", help="product config (default corpus/sources.yaml)")
    parser.add_argument("--questions", metavar="FILE", default=str(DEFAULT_QUESTIONS))
    parser.add_argument("--samples", type=int, default=200, help="at least this many timings of each (default 200)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args()
    if not has_index(args.index):
        parser.error(f"no index in {args.index}: pass --index DIR or run bench/quality.py first")

    info = machine()
    config = make_config(args.config, None, args.index)
    started = time.perf_counter()
    searcher = Searcher.open(config)
    open_seconds = time.perf_counter() - started
    questions = [item.question for item in load_items(args.questions)]
    embedder = searcher.embedder

    for q in questions[:WARMUP_QUESTIONS]:       # warm: model pages, jieba, OpenCC, numpy paths
        searcher.search(q)
        embedder.embed_queries([q])
        answer(searcher, q)

    rounds = -(-args.samples // len(questions))
    log(f"timing {rounds} rounds of {len(questions)} questions (search, encode, answer)")
    timings: dict[str, list[float]] = {"search": [], "encode": [], "answer": []}
    per_question: dict[str, list[float]] = {q: [] for q in questions}
    clock = time.perf_counter_ns
    with OtherLoad() as other:
        for _ in range(rounds):
            for q in questions:
                t0 = clock()
                searcher.search(q)
                t1 = clock()
                embedder.embed_queries([q])
                t2 = clock()
                answer(searcher, q)
                t3 = clock()
                timings["search"].append((t1 - t0) / 1e6)
                timings["encode"].append((t2 - t1) / 1e6)
                timings["answer"].append((t3 - t2) / 1e6)
                per_question[q].append((t1 - t0) / (t2 - t1))
    stats = {name: summary(ms) for name, ms in timings.items()}
    enc = stats["encode"]
    ratios = {
        "search_p50_over_encode_p50": stats["search"]["p50_ms"] / enc["p50_ms"],
        "search_p95_over_encode_p95": stats["search"]["p95_ms"] / enc["p95_ms"],
        "answer_p50_over_encode_p50": stats["answer"]["p50_ms"] / enc["p50_ms"],
        "answer_p95_over_encode_p95": stats["answer"]["p95_ms"] / enc["p95_ms"],
        # the same question's search over its own encode, middle of all pairs
        "paired_search_over_encode_p50": percentile([r for rs in per_question.values() for r in rs], 50),
    }
    ok = ratios["search_p50_over_encode_p50"] <= TARGET_P50_RATIO
    answer_ok = ratios["answer_p50_over_encode_p50"] <= TARGET_P50_RATIO
    slowest = sorted(((statistics.median(rs), q) for q, rs in per_question.items()), reverse=True)[:3]
    result = {"machine": info, "index": str(searcher.index.build_dir), "chunks": len(searcher.index.chunks),
              "open_seconds": open_seconds, "questions": len(questions), "rounds": rounds,
              "other_processes_cores": other.cores,
              "latency": stats, "ratios": ratios,
              "targets": [{"target": "search p50 / encode p50", "value": ratios["search_p50_over_encode_p50"],
                           "wanted": f"<= {TARGET_P50_RATIO}", "pass": ok},
                          {"target": "answer p50 / encode p50", "value": ratios["answer_p50_over_encode_p50"],
                           "wanted": f"<= {TARGET_P50_RATIO}", "pass": answer_ok}],
              "slowest_relative": [{"question": q, "median_search_over_encode": r} for r, q in slowest]}
    write_json(OUT / "latency.json", result)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0

    print(f"Query latency in a warm process: {len(questions)} questions x {rounds} rounds "
          f"= {len(timings['search'])} timings each")
    print(machine_line(info))
    print(f"index: {searcher.index.build_dir} ({len(searcher.index.chunks)} chunks), opened in {open_seconds:.2f} s; "
          f"other processes used {other.cores:.2f} of the {info['cores']} cores while timing")
    print()
    rows = [[name, s["n"], s["p50_ms"], s["p95_ms"], s["mean_ms"], s["max_ms"],
             s["p50_ms"] / enc["p50_ms"], s["p95_ms"] / enc["p95_ms"]] for name, s in stats.items()]
    print(table(["call", "n", "p50 ms", "p95 ms", "mean ms", "max ms", "p50 / encode", "p95 / encode"], rows,
                fmt=lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)))
    print()
    print("  search = searcher.search(q); encode = embedder.embed_queries([q]) alone; answer = answer(searcher, q)")
    print(f"  paired (each question's search over its own encode), median: {ratios['paired_search_over_encode_p50']:.2f}x")
    print("  relatively slowest questions (median search/encode): " +
          "; ".join(f"{r:.2f}x {q[:30]}" for r, q in slowest))
    print()
    print("targets (issue 7):")
    print(target_line("search p50 / bare encode p50", f"{ratios['search_p50_over_encode_p50']:.2f}x",
                      f"<= {TARGET_P50_RATIO}x", ok))
    print(target_line("answer p50 / bare encode p50", f"{ratios['answer_p50_over_encode_p50']:.2f}x",
                      f"<= {TARGET_P50_RATIO}x", answer_ok))
    return 0


if __name__ == "__main__":
    sys.exit(main())
