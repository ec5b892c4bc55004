"""Written answers (answer_mode: llm) on a question file (default ../shared/eval/dev.yaml) with the
local test model: Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M from PyPI, sha256-checked) behind
llama.cpp's OpenAI-compatible server, started here as the tests start it (tests/local_llm.py).

For every question: the extractive answer (`answer()`), then the written one through the product's
own path (`generate.Writer.write`, the path the chat, the API, `ask --llm` and `eval --mode llm`
take). Reported:

- answer@evidence of the written reply (what the visitor reads: the verified text and the passages
  shown under it, dev.yaml's definition) beside the extractive reply's; the written reply must never
  hold less (llm >= extractive); overall and per kind, and of the written text alone (without the
  passages under it: how much of the answer the model's own sentences carry);
- the share of written sentences removed by the support check, the share of replies that fell back
  to the extractive answer (among the questions the model was asked: refused, nothing supported,
  endpoint failure), citations corrected;
- time to the model's first token, to the first verified sentence shown, and in all (p50/p95);
- kept sentences without support: every kept sentence is checked again against the passages it
  cites, by the support check and by a plain substring test of its numbers and names (must be 0).

Measured on the whole portal's index, all 104 questions (bench/README.md): answer@evidence 0.788
written and extractive alike (every kind equal), 0 kept sentences without support, 33% of written
sentences removed, 36% of replies fell back, first token p50 13 s, total p50 17 s / p95 40 s.

`--calibrate` measures the support check's thresholds instead (no LLM): for each dev.yaml question
with a reference answer whose extractive reply holds the evidence, the reference answer's sentences
against that reply's passages (written from the same page: should be supported) and another
question's reference sentences against them (fluent, on the portal's topics, unsupported: must be
refused), plus the reference sentences with every digit changed (must be refused: the number check).
It prints the acceptance of each over a grid of MIN_COVERAGE x MIN_SIMILARITY.

    python bench/generation.py --index bench/out/index                 # ~30 min on 2 cores (dev.yaml: 104)
    python bench/generation.py --index bench/out/index --limit 10      # the first 10 questions
    python bench/generation.py --index bench/out/index --kinds english # one kind
    python bench/generation.py --index bench/out/index --calibrate     # ~1 min, no LLM
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from common import DEFAULT_QUESTIONS, OUT, ROOT, log, machine, machine_line, make_config, percentile, table, write_json

from faq_bot.answer import answer
from faq_bot.eval import EvalHit, Reply, evaluate, load_items, page_texts_of
from faq_bot.generate import (MIN_COVERAGE, MIN_SIMILARITY, SupportChecker, Writer, facts, fact_key, missing_facts,
                              parse_sentence, passages_of, split_written)
from faq_bot.retrieve import Searcher
from faq_bot.textproc import eval_key, split_sentences

sys.path.insert(0, str(ROOT / "tests"))


# ---------------------------------------------------------------- calibration

def reference_answers(path: Path) -> list[dict]:
    import yaml

    return [e for e in yaml.safe_load(path.read_text(encoding="utf-8")) if isinstance(e, dict)]


def sentences_of(text: str) -> list[str]:
    pieces, _ = split_written(text, final=True)
    return [t for t in (parse_sentence(p.raw)[0] for p in pieces) if re.search(r"\w", t)]


def _best(checker: SupportChecker, sentence: str) -> tuple[float, float, bool, str]:
    """(coverage, similarity, facts present, the sentence) of the passage that supports it best."""
    supports = checker.supports(sentence)
    best = max(supports, key=lambda s: (not s.missing, s.strength))
    return best.coverage, best.similarity, not best.missing, sentence


def same_page_sentences(searcher: Searcher, reply, limit: int = 4) -> list[str]:
    """Sentences of the quoted pages that none of the reply's passages holds: true on the portal,
    on the question's topic, and not supported by what the model read (the hardest made-up case)."""
    hits = reply.result.hits
    pages = {hits[q.hit_rank].chunk.page_id for q in reply.decision.quotes}
    shown = eval_key(" ".join(c.snippet for c in reply.citations))
    out = []
    for chunk in searcher.index.chunks:
        if chunk.page_id not in pages:
            continue
        for s in split_sentences(chunk.text):
            if len(s) >= 15 and eval_key(s) not in shown and re.search(r"[。.!?！？]$", s):
                out.append(s)
                break
        if len(out) == limit:
            break
    return out


def _shift_digits(text: str) -> str:
    return re.sub(r"\d", lambda m: str((int(m.group()) + 1) % 10), text)


def calibrate(searcher: Searcher, questions: Path) -> dict:
    entries = reference_answers(questions)
    usable = []
    for e in entries:
        if not e.get("answer") or not e.get("evidence"):
            continue
        reply = answer(searcher, e["question"], e.get("history"))
        if reply.answerable and eval_key(e["evidence"]) in eval_key(reply.shown_text()):
            usable.append((e, reply))
    log(f"{len(usable)} questions with a reference answer and an extractive reply holding the evidence")
    rows = {"supported": [], "other question": [], "same page, other passage": [], "digits changed": []}
    for i, (e, reply) in enumerate(usable):
        checker = SupportChecker(searcher, passages_of(reply))
        other = usable[(i + len(usable) // 2) % len(usable)][0]
        for s in sentences_of(e["answer"]):
            rows["supported"].append(_best(checker, s))
            if re.search(r"\d", s):
                rows["digits changed"].append(_best(checker, _shift_digits(s)))
        if other is not e:
            for s in sentences_of(other["answer"]):
                rows["other question"].append(_best(checker, s))
        for s in same_page_sentences(searcher, reply):
            rows["same page, other passage"].append(_best(checker, s))
    grid = []
    for cov in (0.3, 0.4, 0.5, 0.6, 0.7):
        for sim in (0.82, 0.84, 0.85, 0.86, 0.87, 0.88, 0.90):
            accepted = {k: sum(c >= cov and s >= sim and f for c, s, f, _ in v) / max(len(v), 1) for k, v in rows.items()}
            grid.append({"min_coverage": cov, "min_similarity": sim, **accepted})
    return {"questions": len(usable), "sentences": {k: len(v) for k, v in rows.items()},
            "rows": {k: [[float(r[0]), float(r[1]), bool(r[2]), r[3]] for r in v] for k, v in rows.items()}, "grid": grid}


def print_calibration(result: dict) -> None:
    print(f"support check calibration: {result['questions']} questions; sentences " +
          ", ".join(f"{k}: {v}" for k, v in result["sentences"].items()))
    kinds = list(result["sentences"])
    print(table(["MIN_COVERAGE", "MIN_SIMILARITY", *(f"{k}: kept" for k in kinds)],
                [[g["min_coverage"], g["min_similarity"], *(f"{g[k]:.3f}" for k in kinds)] for g in result["grid"]]))
    print(f"(current: MIN_COVERAGE {MIN_COVERAGE}, MIN_SIMILARITY {MIN_SIMILARITY})")
    for kind, rows in result["rows"].items():
        wrong = [r for r in rows if (r[0] >= MIN_COVERAGE and r[1] >= MIN_SIMILARITY and r[2]) != (kind == "supported")]
        print(f"\n{kind}: {len(wrong)} of {len(rows)} {'refused' if kind == 'supported' else 'kept'} at the current thresholds")
        for c, sim, f, text in wrong:
            print(f"  coverage {c:.2f} similarity {sim:.3f} facts {'ok' if f else 'missing'}  {text}")


# ---------------------------------------------------------------- the written answers

def unsupported_kept(reply, searcher: Searcher) -> list[str]:
    """Kept sentences of a written reply that a passage they cite does not support, checked again:
    by the support check, and by a substring test of their numbers and names in the cited text."""
    if reply.mode != "generated":
        return []
    by_n = {c.n: c for c in reply.citations}
    checker = SupportChecker(searcher, passages_of(reply))
    bad = []
    for s in reply.generation.checked:
        if not s.kept:
            continue
        supports = {x.n: x for x in checker.supports(s.text)}
        for n in s.citations:
            cited = by_n.get(n)
            plain = fact_key(f"{cited.title} {cited.section} {cited.snippet}") if cited else ""
            if cited is None or not supports[n].supports or missing_facts(facts(s.text), plain):
                bad.append(f"[{n}] {s.text}")
    return bad


def run(searcher: Searcher, writer: Writer, questions: Path, limit: int | None, kinds: list[str] | None) -> dict:
    items = [i for i in load_items(questions) if not kinds or i.kind in kinds][:limit]
    records = []
    for i, item in enumerate(items, 1):
        extractive = answer(searcher, item.question, list(item.history))
        started = time.perf_counter()
        written = writer.write(searcher, extractive, list(item.history))
        seconds = time.perf_counter() - started
        gen = written.generation
        records.append((item, extractive, written, seconds))
        log(f"{i}/{len(items)} [{item.kind}] {gen.outcome:<11} {seconds:5.1f} s  kept "
            f"{sum(c.kept for c in gen.checked)}/{len(gen.checked)}  {item.question[:40]}")
    texts = page_texts_of(searcher.index.chunks)
    by_question = {id(item): (e, w) for item, e, w, _ in records}

    def fn(which: int):
        def reply(item):
            a = by_question[id(item)][which]
            return Reply(a.answerable, [EvalHit(h.chunk.page_id, h.chunk.text) for h in a.hits], a.shown_text())
        return reply

    def text_alone(item):          # the written text without the passages shown under it
        a = by_question[id(item)][1]
        return Reply(a.answerable, [], a.text)

    extractive_report, written_report = evaluate(fn(0), items, texts), evaluate(fn(1), items, texts)
    extractive_metrics, written_metrics = extractive_report.metrics(), written_report.metrics()
    alone = evaluate(text_alone, items, texts)
    ext_kind, llm_kind, alone_kind = extractive_report.by_kind(), written_report.by_kind(), alone.by_kind()
    by_kind = {k: {"n": int(m.get("answerable_items", 0) or m.get("unanswerable_items", 0)),
                   "answer@evidence": {"extractive": m.get("answer@evidence"),
                                       "llm": llm_kind[k].get("answer@evidence"),
                                       "written text alone": alone_kind[k].get("answer@evidence")},
                   "abstention": {"extractive": m.get("abstention"), "llm": llm_kind[k].get("abstention")}}
               for k, m in ext_kind.items()}
    generated = [(item, w) for item, _, w, _ in records if w.mode == "generated"]
    alone_hits = {id(r.item) for r in alone.results if r.answer_has_evidence}
    asked = [(item, w, s) for item, e, w, s in records if w.generation.outcome != "skipped"]
    checked = [c for _, w, _ in asked for c in w.generation.checked]
    outcomes: dict[str, int] = {}
    for _, w, _ in asked:
        outcomes[w.generation.outcome] = outcomes.get(w.generation.outcome, 0) + 1
    bad = [b for _, w, _ in asked for b in unsupported_kept(w, searcher)]
    first_token = [w.generation.first_token_s for _, w, _ in asked if w.generation.first_token_s is not None]
    first_shown = [w.generation.first_shown_s for _, w, _ in asked if w.generation.first_shown_s is not None]
    totals = [s for _, _, s in asked]
    return {
        "questions": len(items), "asked_llm": len(asked),
        "answerable": int(extractive_metrics.get("answerable_items", 0)),
        "answer@evidence": {"extractive": extractive_metrics.get("answer@evidence"),
                            "llm": written_metrics.get("answer@evidence"),
                            "written text alone": alone.metrics().get("answer@evidence")},
        "written_replies": len(generated),
        "written_text_holds_evidence": sum(id(item) in alone_hits for item, _ in generated),
        "by_kind": by_kind,
        "abstention": {"extractive": extractive_metrics.get("abstention"), "llm": written_metrics.get("abstention")},
        "written_sentences": len(checked), "removed": sum(not c.kept for c in checked),
        "corrected": sum(c.corrected for c in checked),
        "outcomes": outcomes,
        "fell_back": sum(n for k, n in outcomes.items() if k != "written"),
        "kept_without_support": bad,
        "first_token_s": {"p50": percentile(first_token, 50), "p95": percentile(first_token, 95)},
        "first_shown_s": {"p50": percentile(first_shown, 50), "p95": percentile(first_shown, 95)},
        "total_s": {"p50": percentile(totals, 50), "p95": percentile(totals, 95)},
        "answers": [{"question": item.question, "kind": item.kind, "outcome": w.generation.outcome,
                     "failure": w.generation.failure, "raw": w.generation.raw_text, "text": w.text,
                     "removed": [c.text for c in w.generation.checked if not c.kept]}
                    for item, w, _ in asked],
    }


def print_run(r: dict) -> None:
    ae = r["answer@evidence"]
    share = lambda n, d: f"{n}/{d} = {n / d:.3f}" if d else "-"   # noqa: E731
    fmt = lambda v: "-" if v is None else f"{v:.3f}"   # noqa: E731
    print(f"questions {r['questions']} ({r['answerable']} answerable), the model was asked {r['asked_llm']} "
          "(the others abstained: no call)")
    print(table(["", "extractive", "llm (verified)", "llm text alone"],
                [["answer@evidence", fmt(ae["extractive"]), fmt(ae["llm"]), fmt(ae["written text alone"])],
                 ["abstention", fmt(r["abstention"]["extractive"]), fmt(r["abstention"]["llm"]), ""]]))
    print("(llm (verified): what the visitor reads, the verified text and the passages quoted under it; "
          "text alone: the written text without them)")
    print(table(["kind", "n", "answer@evidence extractive", "llm", "llm text alone", "abstention extractive", "llm"],
                [[k, v["n"], fmt(v["answer@evidence"]["extractive"]), fmt(v["answer@evidence"]["llm"]),
                  fmt(v["answer@evidence"]["written text alone"]), fmt(v["abstention"]["extractive"]),
                  fmt(v["abstention"]["llm"])] for k, v in r["by_kind"].items()]))
    print(f"written replies: {r['written_replies']}; their text alone holds the evidence in "
          f"{r['written_text_holds_evidence']}")
    print(f"written sentences removed: {share(r['removed'], r['written_sentences'])}; "
          f"citations corrected: {r['corrected']}")
    print(f"replies that fell back to the extractive answer: {share(r['fell_back'], r['asked_llm'])} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(r['outcomes'].items()))})")
    print(f"time to first token p50 {r['first_token_s']['p50']:.1f} s, p95 {r['first_token_s']['p95']:.1f} s; "
          f"to first verified sentence p50 {r['first_shown_s']['p50']:.1f} s; "
          f"total p50 {r['total_s']['p50']:.1f} s, p95 {r['total_s']['p95']:.1f} s")
    print(f"kept sentences without support: {len(r['kept_without_support'])}")
    for b in r["kept_without_support"]:
        print(f"  {b}")
    ok = ae["llm"] >= ae["extractive"] and not r["kept_without_support"]
    print(f"answer@evidence llm >= extractive and 0 kept sentences without support: {'PASS' if ok else 'FAIL'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", default=str(OUT / "index"), help="a built index of the portal")
    parser.add_argument("--questions", default=str(DEFAULT_QUESTIONS))
    parser.add_argument("--config", default=None)
    parser.add_argument("--limit", type=int, help="only the first N questions (of --kinds)")
    parser.add_argument("--kinds", help="only these kinds, comma-separated (e.g. paraphrase,english)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--calibrate", action="store_true", help="measure the support thresholds (no LLM)")
    parser.add_argument("--timeout", type=float, default=300.0, help="settings.llm.timeout_s (2 busy cores: generous)")
    parser.add_argument("--max-tokens", type=int, default=300)
    args = parser.parse_args()
    info = machine()
    config = make_config(args.config, None, args.index)
    searcher = Searcher.open(config)
    if args.calibrate:
        result = calibrate(searcher, Path(args.questions))
        print(machine_line(info))
        print_calibration(result)
        write_json(OUT / "generation-calibration.json", {"machine": info, **result})
        return 0
    import local_llm

    from faq_bot.config import LLMSettings

    OUT.mkdir(exist_ok=True)
    server = local_llm.start(OUT / "llama-server.log")
    try:
        writer = Writer(LLMSettings(base_url=server.base_url, model=server.model, timeout_s=args.timeout,
                                    max_tokens=args.max_tokens))
        log(f"writing with {writer.describe()}")
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
        result = run(searcher, writer, Path(args.questions), args.limit, kinds)
    finally:
        server.stop()
    result = {"machine": info, "model": local_llm.MODEL_FILE, "threads": local_llm.THREADS,
              "max_tokens": args.max_tokens, "limit": args.limit, "kinds": args.kinds, **result}
    write_json(OUT / "generation.json", result)
    if args.json:
        import json

        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0
    print(machine_line(info))
    print(f"model: {local_llm.MODEL_FILE} (sha256 {local_llm.MODEL_SHA256[:12]}…), llama-cpp-python "
          f"{_version('llama-cpp-python')}, {local_llm.THREADS} threads, max_tokens {args.max_tokens}")
    print_run(result)
    return 0


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


if __name__ == "__main__":
    sys.exit(main())
