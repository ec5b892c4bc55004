"""Load on the web server: N concurrent clients asking varied questions for a while.

Starts `faq-bot serve` on a free localhost port over an index (default: bench/out/index, or
--index DIR), with the rate limit off, then runs --clients threads that POST /api/ask with the
dev.yaml questions (shuffled per client) for --seconds. Prints requests/s, p50/p95/max latency,
the error count and the server's peak RSS (VmHWM). Targets (issue 3): 0 errors, p95 < 1 s.

    python bench/load.py --index /tmp/idx_full2 [--clients 20] [--seconds 60] [--json]
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import (
    DEFAULT_QUESTIONS,
    OUT,
    ROOT,
    machine,
    machine_line,
    percentile,
    target_line,
    write_json,
)

SERVER_LOG = OUT / "load-server.log"


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


def server_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def client(port: int, questions: list[str], stop_at: float, seed: int, out: list, errors: list) -> None:
    rng = random.Random(seed)
    order = questions[:]
    rng.shuffle(order)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = 0
    while time.monotonic() < stop_at:
        body = json.dumps({"question": order[i % len(order)]}).encode()
        i += 1
        started = time.perf_counter()
        try:
            conn.request("POST", "/api/ask", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                errors.append(f"HTTP {response.status}")
            else:
                out.append(elapsed)
        except (OSError, http.client.HTTPException) as exc:
            errors.append(type(exc).__name__)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default=str(OUT / "index"))
    parser.add_argument("--config")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--questions", default=str(DEFAULT_QUESTIONS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import yaml

    questions = [item["question"] for item in yaml.safe_load(Path(args.questions).read_text(encoding="utf-8"))]
    port = free_port()
    cmd = [sys.executable, "-m", "faq_bot", "serve", "--port", str(port), "--index", args.index, "--rate-limit", "0"]
    if args.config:
        cmd += ["--config", args.config]
    OUT.mkdir(parents=True, exist_ok=True)
    with open(SERVER_LOG, "w", encoding="utf-8") as log:   # a file, not an unread pipe that could fill up
        server = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(port, server)
        latencies: list[float] = []
        errors: list[str] = []
        stop_at = time.monotonic() + args.seconds
        threads = [threading.Thread(target=client, args=(port, questions, stop_at, seed, latencies, errors))
                   for seed in range(args.clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        rss = server_peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    result = {
        "machine": machine(), "clients": args.clients, "seconds": round(wall, 1), "requests": len(latencies),
        "errors": len(errors), "error_kinds": sorted(set(errors)),
        "requests_per_s": round(len(latencies) / wall, 2),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1), "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "server_peak_rss_mb": round(rss, 1),
    }
    write_json(OUT / "load.json", result)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"Load: {args.clients} clients, {result['seconds']} s against POST /api/ask ({args.index})")
    print(machine_line(result["machine"]))
    print(f"requests: {result['requests']}  ({result['requests_per_s']} req/s)")
    print(f"latency: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, max {result['max_ms']} ms")
    print(f"errors: {result['errors']} {result['error_kinds'] or ''}")
    print(f"server peak RSS: {result['server_peak_rss_mb']} MB")
    print(target_line("errors", str(result["errors"]), "0", result["errors"] == 0))
    print(target_line("p95 latency", f"{result['p95_ms']} ms", "< 1000 ms", result["p95_ms"] < 1000))


if __name__ == "__main__":
    main()
