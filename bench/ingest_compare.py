"""Full ingest of this faq-bot beside an earlier revision's, measured side by side in one run on this
machine: the same copy of the corpus, the same command (`faq-bot ingest --quiet` into a new index),
one after the other, each in its own process. Issue 7's target: today's ingest (it now also embeds
every sentence, for answers built from sentences) at most 1.5x the ingest before it.

The earlier revision (default f7727cf, the last commit before issue 7) is unpacked from git into a
temporary folder (`git archive`, nothing in this checkout changes) and imported from there.

    python bench/ingest_compare.py                 # the whole ../shared/corpus: ~30 minutes of both cores
    python bench/ingest_compare.py --subset 8      # the first 8 pages of each source
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DEFAULT_CORPUS, ROOT, OtherLoad, copy_corpus, log, machine, machine_line, make_config, target_line

TARGET_RATIO = 1.5
BASELINE = "f7727cf"

RUN = """
import sys, pathlib
sys.path.insert(0, {root!r})
import faq_bot
assert pathlib.Path(faq_bot.__file__).resolve().is_relative_to(pathlib.Path({root!r}).resolve()), faq_bot.__file__
from faq_bot.cli import main
sys.argv = ["faq-bot"] + {args!r}
sys.exit(main())
"""


def timed_ingest(code_root: Path, config: Path, corpus: Path, index: Path) -> tuple[float, float, str]:
    """Wall seconds and CPU seconds of one ingest in its own process, and its summary line. The CPU
    time is the fairer comparison when other processes share the cores (wall time then depends on
    what they did meanwhile)."""
    args = ["ingest", "--config", str(config), "--corpus", str(corpus), "--index", str(index)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUN.format(root=str(code_root), args=args)],
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"ingest with {code_root} failed: {proc.stderr[-2000:]}")
    return seconds, cpu, proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--subset", type=int, metavar="N", help="only the first N pages of each source")
    parser.add_argument("--baseline", default=BASELINE, help=f"the earlier revision (default {BASELINE})")
    args = parser.parse_args()
    info = machine()
    config_file = ROOT / "corpus" / "sources.yaml"
    config = make_config(None, args.corpus, None)
    with tempfile.TemporaryDirectory(prefix="faq-bot-ingest-compare-") as tmp:
        tmp = Path(tmp)
        baseline = tmp / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "faq_bot"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
        pages = copy_corpus(config, tmp / "corpus", args.subset)
        log(f"{len(pages)} pages copied; ingesting with {args.baseline} ...")
        with OtherLoad() as other_before:
            before, before_cpu, before_line = timed_ingest(baseline, config_file, tmp / "corpus", tmp / "index-before")
        log(f"  {before:.1f} s: {before_line}")
        log("ingesting with this checkout ...")
        with OtherLoad() as other_after:
            after, after_cpu, after_line = timed_ingest(ROOT, config_file, tmp / "corpus", tmp / "index-after")
        log(f"  {after:.1f} s: {after_line}")
    ratio = after / before
    print(f"Full ingest side by side on {len(pages)} pages ({'first ' + str(args.subset) + ' of each source' if args.subset else 'the whole corpus'})")
    print(machine_line(info))
    print(f"  {args.baseline} (before issue 7): {before:8.1f} s wall, {before_cpu:8.1f} s CPU "
          f"(other processes: {max(other_before.cores - before_cpu / before, 0):.2f} cores)   {before_line}")
    print(f"  this checkout:            {after:8.1f} s wall, {after_cpu:8.1f} s CPU "
          f"(other processes: {max(other_after.cores - after_cpu / after, 0):.2f} cores)   {after_line}")
    print(f"  CPU time, this checkout / before: {after_cpu / before_cpu:.2f}x")
    print(target_line("full ingest, this checkout / before", f"{ratio:.2f}x", f"<= {TARGET_RATIO}x",
                      ratio <= TARGET_RATIO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
