"""Load on the web server: what one request may cost, and N concurrent clients on distinct and on
repeated questions, beside the bare model's single-question encode rate measured in the same run.

Starts `faq-bot serve` on a free localhost port over an index (default: bench/out/index, or
--index DIR), with the rate limit off, and measures, one after another:

1. the bare model (the index's embedder, in this process, the server idle): single questions
   encoded one at a time, questions/s: the rate the server is compared with; then 16 a call. The
   single-question rate is measured again after phases 3 and 4, and each phase is compared with
   the mean of the rates just before and after it (the machine's speed drifts over minutes);
2. the cost of one long request, one client, interleaved so both see the same machine: distinct
   10-character questions, distinct 2,000-character questions, and a short follow-up with a
   2,000-character history turn; medians and their ratio to the short question's;
3. distinct questions: --clients threads POST /api/ask for --seconds, every question asked once
   in the whole run (templates over the index's section titles, then comparisons of two), so none
   is answered from memory;
4. the realistic mix: 80% of requests on 20 questions (dev.yaml's first 20), 20% never asked before;
5. with --soak S: the mix for S seconds, with `faq-bot ingest` of one changed page (a copy of the
   corpus) half way through; the server then answers from a copy of --index (the ingest writes its
   build there, not into --index); the server's RSS sampled every 10 s.

Prints answers/s, p50/p95/max, errors and the server's RSS (start, end, peak) per phase, and the
targets of issue 9. Each phase's JSON goes to bench/out/load.json.

    python bench/load.py [--index bench/out/index] [--clients 20] [--seconds 60] [--soak 600] [--json]
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from common import (
    DEFAULT_CORPUS,
    DEFAULT_QUESTIONS,
    OUT,
    ROOT,
    _busy_cpu_seconds,
    _own_cpu_seconds,
    copy_corpus,
    log,
    machine,
    machine_line,
    make_config,
    percentile,
    table,
    target_line,
    write_json,
)

SERVER_LOG = OUT / "load-server.log"
REPEATED = 20                 # the questions most of an FAQ's traffic repeats
REPEATED_SHARE = 0.8
TEMPLATES = ["{t}是什麼？", "{t}怎麼做？", "請問{t}的重點是什麼？", "{t}有哪些方法？", "{t}的效果如何？",
             "可以介紹一下{t}嗎？", "{t}要注意什麼？", "為什麼要用{t}？", "What is {t}?", "How does {t} work?",
             "{t}用什麼模型？", "{t}的資料集是哪一個？"]
CHANGE_PAGE = "deep-learning-101.github.io/GPU.md"       # the page the soak's ingest changes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited; see {SERVER_LOG}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            if response.status == 200 and json.loads(response.read()).get("state") == "ready":   # not only listening
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("server did not start")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The server's resident set (VmRSS) or its peak so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------- questions

def topics(index_dir: Path) -> list[str]:
    """The index's page titles and section names that are short, as people name topics."""
    from faq_bot.index import load_index

    found = set()
    for chunk in load_index(index_dir, verify=False).chunks:
        for name in (chunk.title, chunk.section.split(" › ")[-1] if chunk.section else ""):
            name = " ".join(name.split()).strip(" #*:：")
            if 2 <= len(name) <= 24:
                found.add(name)
    return sorted(found)


def distinct_questions(index_dir: Path, seed: int = 7) -> list[str]:
    """Questions a visitor could ask, each different: templates over the index's topics, shuffled."""
    questions = sorted({template.format(t=t) for t in topics(index_dir) for template in TEMPLATES})
    random.Random(seed).shuffle(questions)
    return questions


def topic_pairs(index_dir: Path, seed: int = 7) -> Iterator[str]:
    """More distinct questions once those run out: two topics compared, in a shuffled order."""
    names = topics(index_dir)
    rng = random.Random(seed)
    seen = set()
    while True:
        a, b = rng.sample(names, 2)
        if (a, b) not in seen:
            seen.add((a, b))
            yield f"{a}和{b}有什麼不同？"


def long_texts(index_dir: Path, n: int, chars: int = 2000) -> list[str]:
    """`n` different texts of `chars` characters: consecutive chunks of the index, as a visitor
    pasting part of a page would send."""
    from faq_bot.index import load_index

    chunks = [c.text for c in load_index(index_dir, verify=False).chunks]
    out, start = [], 0
    while len(out) < n and start < len(chunks):
        text, i = "", start
        while len(text) < chars and i < len(chunks):
            text += chunks[i] + " "
            i += 1
        out.append(text[:chars])
        start = i
    return out


class Pool:
    """Hands out each question once across all threads and phases: `questions`, then `more`."""

    def __init__(self, questions: list[str], more: Iterator[str]) -> None:
        self._it: Iterator[str] = itertools.chain(questions, more)
        self._lock = threading.Lock()
        self.singles = len(questions)
        self.handed_out = 0

    def next(self) -> str:
        with self._lock:
            self.handed_out += 1
            return next(self._it)


# ---------------------------------------------------------------- measuring

BARE_QUESTIONS = 200          # the pool's first questions: encoded bare, never sent to the server


def bare_encode_rate(embedder, questions: list[str], seconds: float = 10.0, batch: int = 1) -> dict:
    """Questions through the index's own embedder, `batch` per call (1: one call each): questions
    per second and CPU ms per question."""
    embedder.embed_queries(questions[:3])                      # warm
    own, busy = _own_cpu_seconds(), _busy_cpu_seconds()
    done, started = 0, time.perf_counter()
    calls = itertools.cycle([questions[i:i + batch] for i in range(0, len(questions) - batch + 1, batch)])
    while time.perf_counter() - started < seconds:
        done += len(embedder.embed_queries(next(calls)))
    wall = time.perf_counter() - started
    own, busy = _own_cpu_seconds() - own, _busy_cpu_seconds() - busy
    return {"questions": done, "seconds": round(wall, 1), "per_s": round(done / wall, 1),
            "cpu_ms_per_question": round(own / done * 1000, 2), "other_cores": round(max(busy - own, 0) / wall, 2)}


def post(conn: http.client.HTTPConnection, body: dict) -> tuple[int, bytes]:
    conn.request("POST", "/api/ask", body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def request_cost(port: int, pool: Pool, longs: list[str]) -> dict:
    """Median seconds of distinct short questions, long questions and short follow-ups with a long
    history turn, asked one at a time and interleaved; ratios to the short question."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times: dict[str, list[float]] = {"short": [], "long": [], "long_history": []}
    errors = []
    for i, text in enumerate(longs):
        short = pool.next()[:10]
        for kind, body in (("short", {"question": short}), ("long", {"question": text}),
                           ("long_history", {"question": f"那它呢？{i}", "history": [text]})):
            started = time.perf_counter()
            status, _ = post(conn, body)
            times[kind].append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"{kind}: HTTP {status}")
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {"n": len(longs), "errors": errors,
            "median_ms": {k: round(v * 1000, 1) for k, v in medians.items()},
            "ratio": {k: round(v / medians["short"], 2) for k, v in medians.items()},
            "short_chars": 10, "long_chars": len(longs[0]) if longs else 0}


def run_clients(port: int, clients: int, seconds: float, pick: Callable[[random.Random], str],
                pid: int, rss_every: float = 0, during: Callable[[], None] | None = None) -> dict:
    """`clients` threads asking `pick(rng)` questions for `seconds`; optionally `during()` run on
    this thread half way through and the server's RSS sampled every `rss_every` seconds."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, bad = [], []
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                status, _ = post(conn, {"question": pick(rng)})
                if status == 200:
                    mine.append(time.perf_counter() - started)
                else:
                    bad.append(f"HTTP {status}")
            except (OSError, http.client.HTTPException) as exc:
                bad.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    rss = [server_rss_mb(pid)]
    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    cpu = (process_cpu_seconds(pid), _own_cpu_seconds(), _busy_cpu_seconds())
    started = time.monotonic()
    for t in threads:
        t.start()
    ran_during = during is None
    while any(t.is_alive() for t in threads):
        time.sleep(min(rss_every or 1.0, 1.0))
        if rss_every and time.monotonic() - started >= len(rss) * rss_every:
            rss.append(server_rss_mb(pid))
        if not ran_during and time.monotonic() - started >= seconds / 2:
            during()
            ran_during = True
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    rss.append(server_rss_mb(pid))
    server_cpu = process_cpu_seconds(pid) - cpu[0]
    clients_cpu = _own_cpu_seconds() - cpu[1]
    other = max(_busy_cpu_seconds() - cpu[2] - server_cpu - clients_cpu, 0.0)
    return {"clients": clients, "seconds": round(wall, 1), "answers": len(latencies),
            # CPU per answer, and the cores the server, these clients and every other process used
            "server_cpu_ms_per_answer": round(server_cpu / max(len(latencies), 1) * 1000, 2),
            "server_cores": round(server_cpu / wall, 2), "client_cores": round(clients_cpu / wall, 2),
            "other_cores": round(other / wall, 2),
            "answers_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 1), "p95_ms": round(percentile(latencies, 95) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
            "errors": len(errors), "error_kinds": sorted(set(errors)),
            "rss_start_mb": round(rss[0], 1), "rss_end_mb": round(rss[-1], 1), "rss_max_mb": round(max(rss), 1),
            "rss_samples_mb": [round(x, 1) for x in rss]}


def ingest_one_changed_page(config_file: str | None, corpus_dir: str, index: str, work: Path) -> dict:
    """`faq-bot ingest` into `index` from a copy of the corpus with one page changed (a paragraph
    appended): the build switch a site owner causes while the server runs."""
    config = make_config(config_file, corpus=corpus_dir)
    corpus = work / "corpus"
    copy_corpus(config, corpus)
    source, _, page = CHANGE_PAGE.partition("/")
    with open(corpus / source / page, "a", encoding="utf-8") as f:
        f.write("\n\n## 壓力測試\n\n這一段是 bench/load.py 在伺服器運作時加上的，用來觸發重新索引。\n")
    cmd = [sys.executable, "-m", "faq_bot", "ingest", "--corpus", str(corpus), "--index", index]
    if config_file:
        cmd += ["--config", config_file]
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    return {"seconds": round(time.perf_counter() - started, 1), "exit": result.returncode,
            "output": (result.stdout + result.stderr).strip().splitlines()[:2]}


# ---------------------------------------------------------------- report

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default=str(OUT / "index"))
    parser.add_argument("--config")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60, help="per load phase (default 60)")
    parser.add_argument("--cost-samples", type=int, default=30, help="long requests in the cost phase (default 30)")
    parser.add_argument("--soak", type=float, default=0, help="seconds of the soak phase (0: skip; issue 9: 600)")
    parser.add_argument("--questions", default=str(DEFAULT_QUESTIONS))
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="what --index was built from (the soak's ingest copies it)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import yaml

    config = make_config(args.config, index=args.index)
    repeated = [item["question"] for item in yaml.safe_load(Path(args.questions).read_text(encoding="utf-8"))][:REPEATED]
    pool = Pool(distinct_questions(Path(args.index)), topic_pairs(Path(args.index)))
    longs = long_texts(Path(args.index), args.cost_samples)
    bare_questions = [pool.next() for _ in range(BARE_QUESTIONS)]

    work = Path(tempfile.mkdtemp(prefix="faqbot-load-"))
    served = args.index
    if args.soak:        # the soak's ingest writes a build: into a copy, never into the caller's index
        from faq_bot.index import current_build

        build = current_build(Path(args.index))
        served = str(work / "index")
        shutil.copytree(build, Path(served) / build.name)
        (Path(served) / "CURRENT").write_text(build.name + "\n", encoding="utf-8")
    port = free_port()
    cmd = [sys.executable, "-m", "faq_bot", "serve", "--port", str(port), "--index", served, "--rate-limit", "0"]
    if args.config:
        cmd += ["--config", args.config]
    OUT.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": machine(), "index": args.index}
    with open(SERVER_LOG, "w", encoding="utf-8") as server_log:   # a file, not an unread pipe that could fill up
        server = subprocess.Popen(cmd, cwd=ROOT, stdout=server_log, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(port, server)
        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        post(warm, {"question": pool.next()})
        result["rss_start_mb"] = round(server_rss_mb(server.pid), 1)
        from faq_bot.embed import embedder_from_settings

        embedder = embedder_from_settings(config.settings)
        log("1/5 the bare model: single questions, then 16 a call")
        bare = [bare_encode_rate(embedder, bare_questions)]
        result["bare_batch16"] = bare_encode_rate(embedder, bare_questions, batch=16)
        log("2/5 cost of long requests")
        result["cost"] = request_cost(port, pool, longs)
        log(f"3/5 distinct questions, {args.clients} clients, {args.seconds:.0f} s")
        result["distinct"] = run_clients(port, args.clients, args.seconds, lambda rng: pool.next(), server.pid)
        bare.append(bare_encode_rate(embedder, bare_questions))

        def mix(rng: random.Random) -> str:
            return rng.choice(repeated) if rng.random() < REPEATED_SHARE else pool.next()

        log(f"4/5 realistic mix ({REPEATED_SHARE:.0%} on {REPEATED} questions), {args.clients} clients, {args.seconds:.0f} s")
        result["mix"] = run_clients(port, args.clients, args.seconds, mix, server.pid)
        bare.append(bare_encode_rate(embedder, bare_questions))
        # this machine's speed drifts by a fifth or more over minutes: each phase is compared with
        # the bare rate measured just before and just after it
        result["bare_samples"] = bare
        result["bare"] = {"per_s": round(statistics.mean(b["per_s"] for b in bare), 1),
                          "cpu_ms_per_question": round(statistics.mean(b["cpu_ms_per_question"] for b in bare), 2),
                          "other_cores": round(max(b["other_cores"] for b in bare), 2),
                          "questions": sum(b["questions"] for b in bare),
                          "seconds": round(sum(b["seconds"] for b in bare), 1)}
        for phase, (before, after) in (("distinct", bare[0:2]), ("mix", bare[1:3])):
            result[phase]["bare_per_s"] = round((before["per_s"] + after["per_s"]) / 2, 1)
        if args.soak:
            log(f"5/5 soak: the mix for {args.soak:.0f} s, an ingest of one changed page half way")
            ingest: dict = {}
            result["soak"] = run_clients(port, args.clients, args.soak, mix, server.pid, rss_every=10,
                                         during=lambda: ingest.update(ingest_one_changed_page(args.config, args.corpus, served, work)))
            result["soak"]["ingest"] = ingest
        result["rss_end_mb"] = round(server_rss_mb(server.pid), 1)
        result["rss_peak_mb"] = round(server_rss_mb(server.pid, "VmHWM"), 1)
        result["distinct_questions_asked"] = pool.handed_out
        result["of_them_comparisons"] = max(pool.handed_out - pool.singles, 0)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    write_json(OUT / "load.json", result)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    report(result, args)


def report(r: dict, args: argparse.Namespace) -> None:
    bare = r["bare"]["per_s"]
    phases = [("distinct questions", r["distinct"]), (f"mix: {REPEATED_SHARE:.0%} on {REPEATED} questions", r["mix"])]
    if "soak" in r:
        phases.append((f"soak ({args.soak:.0f} s, ingest half way)", r["soak"]))
    print(f"Load against POST /api/ask ({r['index']}), {args.clients} clients, rate limit off")
    print(machine_line(r["machine"]))
    b, b16 = r["bare"], r["bare_batch16"]
    samples = " / ".join(f"{x['per_s']}" for x in r["bare_samples"])
    print(f"bare model (the index's embedder in this process, the server idle), single questions one at a time: "
          f"{samples} questions/s before the distinct phase / between it and the mix / after the mix "
          f"(10 s each; {b['cpu_ms_per_question']} CPU ms a question on average, other processes used up to "
          f"{b['other_cores']} cores meanwhile); 16 a call: {b16['per_s']} questions/s ({b16['cpu_ms_per_question']} "
          "CPU ms each). A phase's \"x bare\" is against the mean of the samples before and after it "
          "(the soak's against all three).")
    print()
    print(table(["phase", "answers/s", "x bare", "p50 ms", "p95 ms", "max ms", "errors", "RSS start MB", "RSS end MB",
                 "server CPU ms/answer", "cores: server", "clients", "others"],
                [[name, p["answers_per_s"], round(p["answers_per_s"] / p.get("bare_per_s", bare), 2), p["p50_ms"], p["p95_ms"], p["max_ms"],
                  p["errors"], p["rss_start_mb"], p["rss_end_mb"], p["server_cpu_ms_per_answer"], p["server_cores"],
                  p["client_cores"], p["other_cores"]] for name, p in phases],
                fmt=lambda v: f"{v:g}" if isinstance(v, float) else str(v)))
    cost = r["cost"]
    print()
    print(f"one request at a time ({cost['n']} of each, interleaved; medians):")
    print(table(["request", "median ms", "x short"],
                [["10-character question", cost["median_ms"]["short"], cost["ratio"]["short"]],
                 [f"{cost['long_chars']}-character question", cost["median_ms"]["long"], cost["ratio"]["long"]],
                 [f"follow-up with a {cost['long_chars']}-character history turn", cost["median_ms"]["long_history"],
                  cost["ratio"]["long_history"]]],
                fmt=lambda v: f"{v:g}" if isinstance(v, float) else str(v)))
    print()
    print(f"server RSS: {r['rss_start_mb']} MB after start, {r['rss_end_mb']} MB at the end, peak {r['rss_peak_mb']} MB")
    if "soak" in r:
        soak = r["soak"]
        growth = soak["rss_end_mb"] / soak["rss_start_mb"] - 1
        print(f"soak: RSS {soak['rss_start_mb']} -> {soak['rss_end_mb']} MB ({growth:+.1%}), max {soak['rss_max_mb']} MB; "
              f"ingest {soak['ingest'].get('seconds')} s, exit {soak['ingest'].get('exit')}: {soak['ingest'].get('output')}")
    print(f"distinct questions asked: {r['distinct_questions_asked']} (each once; {r['of_them_comparisons']} of them "
          "\"A和B有什麼不同？\" after the single-topic ones ran out)")
    errors = sum(p["errors"] for _, p in phases) + len(cost["errors"])
    worst = max(cost["ratio"]["long"], cost["ratio"]["long_history"])
    print()
    print(target_line("long request cost (2,000 characters vs 10, median)", f"{worst:g}x", "<= 10x", worst <= 10))
    d = r["distinct"]["answers_per_s"] / r["distinct"]["bare_per_s"]
    m = r["mix"]["answers_per_s"] / r["mix"]["bare_per_s"]
    print(target_line("distinct questions vs bare single-question encodes", f"{d:.2f}x", ">= 1x", d >= 1))
    print(target_line("realistic mix vs bare single-question encodes", f"{m:.2f}x", ">= 5x", m >= 5))
    p95 = max(p["p95_ms"] for _, p in phases)
    print(target_line("p95 latency", f"{p95:g} ms", "< 1000 ms", p95 < 1000))
    print(target_line("errors", str(errors), "0", errors == 0))
    if "soak" in r:
        print(target_line("RSS growth over the soak", f"{growth:+.1%}", "< 10%", growth < 0.10))


if __name__ == "__main__":
    main()
