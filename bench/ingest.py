"""Ingest cost of faq-bot, measured in one run on this machine, in a fresh temporary index built from
a copy of the corpus (the shared corpus itself is never changed):

1. full ingest: wall time of the product's `faq_bot.ingest.ingest()` from nothing, and the ratio to
   bare passage encoding of the same texts (`embed_in_batches` over `c.embed_text()` of the built
   index's chunks and over its answer sentences, same batch size, model load excluded): the
   overhead of everything that is not the model (target <= 1.3x; bench/ingest_compare.py puts the
   whole ingest beside an earlier revision's);
2. no-change re-ingest: `ingest()` again on the unchanged copy, in a fresh process, and the whole
   `faq-bot ingest --quiet` command as a person runs it (target <= 3 s, on the command);
3. one page changed: a paragraph appended to one page of the copy, then `ingest()`: wall time and
   how many chunks were embedded;
4. peak RSS (ru_maxrss) of the full ingest process, and of a process holding a loaded searcher
   after answering every question of the question file (target <= 1 GB each).

Each step runs in its own child process (bench/common.py), so every peak RSS belongs to one job;
each step also reports the cores it got on average (its CPU time over its wall time) and the
CPU time every other process used meanwhile (/proc/stat), so a run that shared the machine shows it.
A full-corpus run costs about 25 minutes of both cores (ingest, then the bare encoding): run it
alone on the machine. Develop with a subset, or re-measure steps 2-4 from a saved index:

    python bench/ingest.py --subset 5                     # first 5 pages of each source
    python bench/ingest.py [--corpus ../shared/corpus] [--save-index bench/out/index] [--json]
    python bench/ingest.py --from-index bench/out/index   # skip the full ingest and the bare encoding
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    DEFAULT_CORPUS,
    DEFAULT_QUESTIONS,
    OUT,
    ROOT,
    copy_corpus,
    has_index,
    log,
    machine,
    machine_line,
    make_config,
    run_child,
    target_line,
    write_json,
)

TARGET_RATIO = 1.3
TARGET_NO_CHANGE_S = 3.0
TARGET_RSS_MB = 1024.0
DEFAULT_CHANGE_PAGE = "deep-learning-101.github.io/GPU.md"
APPENDED = ("\n\n## 基準測試附加段落\n\n這一段文字是 bench/ingest.py 在語料的暫存副本中附加的，"
            "用來量測只有一頁改變時重新建立索引所需的時間。\n")


def pick_page(copied: list[str], wanted: str | None) -> str:
    if wanted:
        if wanted not in copied:
            raise SystemExit(f"--change-page {wanted}: not among the copied pages")
        return wanted
    if DEFAULT_CHANGE_PAGE in copied:
        return DEFAULT_CHANGE_PAGE
    return next((p for p in copied if p.endswith(".md")), copied[0])


def _cores(step: dict) -> str:
    return f"it got {step['cores_used']:.2f} cores, other processes {step['other_cores']:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", metavar="DIR", default=str(DEFAULT_CORPUS),
                        help="folder holding the sources by folder name (default ../shared/corpus); copied first")
    parser.add_argument("--subset", type=int, metavar="N", help="copy only the first N pages of each source")
    parser.add_argument("--config", metavar="FILE", help="product config (default corpus/sources.yaml)")
    parser.add_argument("--questions", metavar="FILE", default=str(DEFAULT_QUESTIONS),
                        help="questions the loaded searcher answers before its RSS is read")
    parser.add_argument("--change-page", metavar="SOURCE/PATH",
                        help=f"the page to append a paragraph to (default {DEFAULT_CHANGE_PAGE})")
    parser.add_argument("--workdir", metavar="DIR",
                        help="keep the corpus copy and index here (default: a temporary folder, removed)")
    parser.add_argument("--save-index", metavar="DIR",
                        help="copy the index as built by the full ingest (before the page change) to DIR, "
                             "e.g. bench/out/index for bench/quality.py and bench/latency.py")
    parser.add_argument("--from-index", metavar="DIR",
                        help="start from a copy of this index (built from the same corpus) instead of a full "
                             "ingest: steps 1 and the bare encoding are skipped")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a report")
    args = parser.parse_args()
    if args.from_index and not has_index(args.from_index):
        parser.error(f"--from-index {args.from_index}: no index there")

    info = machine()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="faqbot-bench-ingest-"))
    if args.workdir and work.exists() and any(work.iterdir()):
        parser.error(f"--workdir {work} is not empty")
    corpus, index = work / "corpus", work / "index"
    full = encode = None
    try:
        copied = copy_corpus(make_config(args.config, args.corpus, None), corpus, args.subset)
        log(f"copied {len(copied)} pages to {corpus}")
        base = {"config_file": args.config, "corpus": str(corpus), "index": str(index)}

        if args.from_index:
            shutil.copytree(args.from_index, index, ignore=shutil.ignore_patterns(".lock"))
            log(f"1-2/5 skipped: starting from a copy of {args.from_index}")
        else:
            log("1/5 full ingest (child process)")
            full = run_child("ingest", **base)
            if args.save_index:
                target = Path(args.save_index)
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(index, target, ignore=shutil.ignore_patterns(".lock"))
                log(f"saved the full index to {target}")
            log("2/5 bare passage encoding of the same chunks and sentences (child process)")
            encode = run_child("encode", config_file=args.config, index=str(index))

        log("3/5 no-change re-ingest: ingest() in a child process, then the faq-bot ingest command")
        again = run_child("ingest", **base)
        command = [sys.executable, "-m", "faq_bot", "ingest", "--corpus", str(corpus), "--index", str(index), "--quiet"]
        if args.config:
            command += ["--config", args.config]
        t0 = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT)
        cli_seconds = time.perf_counter() - t0

        page = pick_page(copied, args.change_page)
        source_name, rel = page.split("/", 1)
        source = make_config(args.config, corpus, None).source(source_name)
        with open(source.path / rel, "a", encoding="utf-8") as f:
            f.write(APPENDED)
        log(f"4/5 one page changed ({page}): ingest() in a child process")
        changed = run_child("ingest", **base)

        log("5/5 loaded searcher answering the questions (child process)")
        searcher = run_child("searcher", config_file=args.config, index=str(index), questions=args.questions)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    ratio = full["seconds"] / encode["seconds"] if full else None
    targets = [  # (what, value, shown, wanted, pass)
        ("no-change re-ingest, `faq-bot ingest` command", cli_seconds, f"{cli_seconds:.2f} s",
         f"<= {TARGET_NO_CHANGE_S:.0f} s", cli_seconds <= TARGET_NO_CHANGE_S),
        ("peak RSS of a loaded searcher (MB)", searcher["peak_rss_mb"], f"{searcher['peak_rss_mb']:.0f} MB",
         f"<= {TARGET_RSS_MB:.0f} MB", searcher["peak_rss_mb"] <= TARGET_RSS_MB),
    ]
    if full:
        targets[:0] = [
            ("full ingest / bare encoding", ratio, f"{ratio:.2f}x", f"<= {TARGET_RATIO}x", ratio <= TARGET_RATIO),
            ("peak RSS of the full ingest (MB)", full["peak_rss_mb"], f"{full['peak_rss_mb']:.0f} MB",
             f"<= {TARGET_RSS_MB:.0f} MB", full["peak_rss_mb"] <= TARGET_RSS_MB),
        ]
    problems = []
    if not again["unchanged"]:
        problems.append(f"the no-change re-ingest did not find the index up to date: embedded {again['embedded']}, "
                        f"pages changed {again['pages_changed'][:5]}")
    if changed["pages_changed"] != [page]:
        problems.append(f"after changing {page} ingest reported pages changed {changed['pages_changed'][:5]}")
    busy = [name for name, step in (("full ingest", full), ("bare encoding", encode), ("no-change", again),
                                    ("one page changed", changed)) if step and step["other_cores"] > 0.2]
    result = {
        "machine": info, "corpus": args.corpus, "subset": args.subset, "from_index": args.from_index,
        "pages_copied": len(copied),
        "full_ingest": full, "bare_encoding": encode, "ratio_full_over_encoding": ratio,
        "no_change": {"ingest": again, "command_seconds": cli_seconds},
        "one_page_changed": {"page": page, **changed},
        "searcher": searcher,
        "targets": [{"target": t, "value": v, "shown": shown, "wanted": w, "pass": ok}
                    for t, v, shown, w, ok in targets],
        "problems": problems,
    }
    name = "ingest.json" if args.subset is None and not args.from_index else (
        f"ingest-subset{args.subset}.json" if args.subset is not None else "ingest-from-index.json")
    write_json(OUT / name, result)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0

    what = f"first {args.subset} pages of each source" if args.subset else "every page"
    print(f"Ingest of {args.corpus} ({what}: {len(copied)} files, {again['pages']} pages indexed, "
          f"{again['chunks']} chunks)")
    print(machine_line(info))
    print()
    if full:
        batch = make_config(args.config, None, None).settings.embed_batch_size
        print(f"1. full ingest:            {full['seconds']:8.1f} s   (child process {full['process_seconds']:.1f} s "
              f"incl. start-up and imports; {_cores(full)})")
        print(f"   bare passage encoding:  {encode['seconds']:8.1f} s   ({encode['texts']} chunk and sentence texts, "
              f"{encode['chars']:,} characters, batch size {batch}, {encode['texts'] / encode['seconds']:.1f} "
              f"texts/s, model load {encode['model_load_seconds']:.2f} s not counted; {_cores(encode)})")
        print(f"   ratio:                  {ratio:8.2f}x  (overhead {full['seconds'] - encode['seconds']:.1f} s)")
        rest = full["seconds"] - full["embedding_seconds"]
        print(f"   inside the full ingest: {full['embedding_seconds']:8.1f} s in embed_passages, {rest:.1f} s everything "
              f"else (read, clean, chunk, model load, BM25 words, write): {full['seconds'] / full['embedding_seconds']:.2f}x "
              "its own embedding")
    else:
        print(f"1. full ingest and bare encoding: not measured (started from a copy of {args.from_index})")
    print(f"2. no-change re-ingest:    {again['seconds']:8.2f} s   ingest() in a warm-imported process "
          f"(child process {again['process_seconds']:.2f} s; {_cores(again)}); up to date: {again['unchanged']}")
    print(f"   `faq-bot ingest --quiet`: {cli_seconds:6.2f} s   the whole command, as a person runs it")
    print(f"3. one page changed:       {changed['seconds']:8.2f} s   {page}: {changed['embedded']} chunk(s) "
          f"embedded in {changed['embedding_seconds']:.2f} s, {changed['reused']} reused "
          f"(child process {changed['process_seconds']:.2f} s; {_cores(changed)})")
    if full:
        print(f"4. peak RSS, full ingest:  {full['peak_rss_mb']:8.0f} MB   (bare encoding: {encode['peak_rss_mb']:.0f} MB)")
    print(f"   peak RSS, no-change re-ingest: {again['peak_rss_mb']:.0f} MB; one page changed: "
          f"{changed['peak_rss_mb']:.0f} MB")
    print(f"   loaded searcher:        {searcher['peak_rss_mb']:8.0f} MB peak after {searcher['queries']} answers "
          f"(RSS {searcher['rss_after_open_mb']:.0f} MB after open and a first answer, {searcher['open_seconds']:.2f} s; "
          f"{searcher['rss_after_queries_mb']:.0f} MB after the answers)")
    print()
    print("targets (issue 2):")
    for t, _, shown, w, ok in targets:
        print(target_line(t, shown, w, ok))
    if busy:
        print(f"note: other processes used more than 0.2 cores during: {', '.join(busy)}; "
              "times there are upper bounds")
    for p in problems:
        print(f"PROBLEM: {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
