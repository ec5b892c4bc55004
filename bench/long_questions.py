"""What a long question costs, against a 10-character one, in a warm process: the reason for the
bounds in faq_bot/retrieve.py (DENSE_QUERY_CHARS, SEARCHED_CHARS, CONTEXT_UNITS).

1. The model alone: CPU ms of one `embed_queries([text])` by how many characters of a page it is
   given (10 ... 2,000): its cost grows with the text's tokens.
2. `answer()` (what the app calls), CPU ms, median over --samples of each, interleaved: a distinct
   10-character question, a distinct 2,000-character one (consecutive chunks of the index, as a
   visitor pasting a page would send), and a short follow-up whose history turn is 2,000
   characters; with the bounds as configured, and with --try DENSE:SEARCHED pairs beside them.

CPU time, not wall time, so that other processes on the machine change the figures less (the run
prints how many cores they used). The same ratio over HTTP is in bench/load.py.

    python bench/long_questions.py [--index bench/out/index] [--samples 12] [--try 200:2000 --try 140:140]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")      # as the server runs the model (web/live.py)

from common import OUT, OtherLoad, log, machine, machine_line, make_config, table, target_line, write_json  # noqa: E402
from load import distinct_questions, long_texts  # noqa: E402

import faq_bot.retrieve as retrieve  # noqa: E402
from faq_bot.answer import answer  # noqa: E402

LENGTHS = (10, 25, 50, 100, 140, 200, 500, 2000)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def model_costs(embedder, texts: list[str]) -> list[dict]:
    """Median CPU ms of one query encode by the number of characters embedded."""
    rows = []
    for n in LENGTHS:
        times = []
        for text in texts:
            started = cpu()
            embedder.embed_queries([text[:n]])
            times.append((cpu() - started) * 1000)
        rows.append({"chars": n, "cpu_ms": statistics.median(times)})
    for row in rows:
        row["ratio"] = row["cpu_ms"] / rows[0]["cpu_ms"]
    return rows


def answer_costs(searcher, shorts: list[str], longs: list[str]) -> dict:
    """Median CPU ms of answer() for short questions, long ones and long history turns, interleaved."""
    times: dict[str, list[float]] = {"short": [], "long": [], "long_history": []}
    for i, text in enumerate(longs):
        for kind, ask in (("short", lambda: answer(searcher, shorts[i])), ("long", lambda: answer(searcher, text)),
                          ("long_history", lambda: answer(searcher, f"那它呢？{i}", [text]))):
            started = cpu()
            ask()
            times[kind].append((cpu() - started) * 1000)
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {"cpu_ms": medians, "ratio": {k: v / medians["short"] for k, v in medians.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default=str(OUT / "index"))
    parser.add_argument("--config")
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--try", dest="variants", action="append", default=[], metavar="DENSE:SEARCHED",
                        help="other bounds to measure beside the configured ones")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from faq_bot.retrieve import Searcher

    searcher = Searcher.open(make_config(args.config, index=args.index))
    index = Path(args.index)
    longs = long_texts(index, args.samples)
    pool = distinct_questions(index, seed=9)
    answer(searcher, pool[0])                                        # warm
    configured = (retrieve.DENSE_QUERY_CHARS, retrieve.SEARCHED_CHARS)
    variants = [configured] + [tuple(int(x) for x in v.split(":")) for v in args.variants]
    result = {"machine": machine(), "index": args.index, "context_units": retrieve.CONTEXT_UNITS, "runs": []}
    with OtherLoad() as other:
        log("1/2 the model alone")
        result["model"] = model_costs(searcher.embedder, longs)
        for n, (dense, searched) in enumerate(variants):
            log(f"2/2 answer(): embedded {dense}, searched {searched} characters")
            retrieve.DENSE_QUERY_CHARS, retrieve.SEARCHED_CHARS = dense, searched
            shorts = [q[:10] for q in pool[1 + n * len(longs):1 + (n + 1) * len(longs)]]   # none asked twice
            result["runs"].append({"dense_chars": dense, "searched_chars": searched,
                                   **answer_costs(searcher, shorts, longs)})
    retrieve.DENSE_QUERY_CHARS, retrieve.SEARCHED_CHARS = configured
    result["other_cores"] = round(other.cores, 2)
    write_json(OUT / "long_questions.json", result)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"Long questions: CPU time in a warm process ({args.index}), {args.samples} of each, OMP_WAIT_POLICY "
          f"{os.environ['OMP_WAIT_POLICY']}")
    print(machine_line(result["machine"]) + f"; other processes used {result['other_cores']} cores meanwhile")
    print()
    print("the model alone, one query of the first N characters of a page:")
    print(table(["characters", "CPU ms", "x 10 characters"],
                [[r["chars"], round(r["cpu_ms"], 1), round(r["ratio"], 1)] for r in result["model"]],
                fmt=lambda v: f"{v:g}" if isinstance(v, float) else str(v)))
    print()
    print(f"answer(), median CPU ms (a follow-up's previous question: its first {retrieve.CONTEXT_UNITS} words or CJK characters):")
    print(table(["embedded / searched chars", "10-char question", "2,000-char question", "x", "2,000-char history",
                 "x"],
                [[f"{r['dense_chars']} / {r['searched_chars']}" + (" (configured)" if i == 0 else ""),
                  round(r["cpu_ms"]["short"], 1), round(r["cpu_ms"]["long"], 1), round(r["ratio"]["long"], 1),
                  round(r["cpu_ms"]["long_history"], 1), round(r["ratio"]["long_history"], 1)]
                 for i, r in enumerate(result["runs"])],
                fmt=lambda v: f"{v:g}" if isinstance(v, float) else str(v)))
    worst = max(result["runs"][0]["ratio"]["long"], result["runs"][0]["ratio"]["long_history"])
    print()
    print(target_line("2,000 characters vs 10, configured bounds", f"{worst:.1f}x", "<= 10x", worst <= 10))


if __name__ == "__main__":
    main()
