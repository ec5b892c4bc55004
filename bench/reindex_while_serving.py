"""Rebuild the index while the server answers: no request may fail, and answers must switch to
the new build without a restart.

Copies the fixture site (tests/fixtures) and builds its index, starts `faq-bot serve` over it,
runs --clients threads asking questions continuously, then appends a new section to one page and
runs `faq-bot ingest` (a separate process, as a site owner would). Prints the request count, the
errors (target 0), how long after the ingest finished the first answer from the new text came,
and the ingest time.

    python bench/reindex_while_serving.py [--clients 4] [--rounds 3]
"""
from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, machine, machine_line, target_line
from load import free_port, wait_until_up

FIXTURES = ROOT / "tests" / "fixtures"
QUESTIONS = ["語音去噪模型多大？", "混合檢索是怎麼做的", "等錯誤率 EER 是怎麼定義的", "DeepKE 可以做什麼"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "faq_bot", *args], check=False, cwd=ROOT, capture_output=True, text=True)


def ask(conn: http.client.HTTPConnection, question: str) -> tuple[int, dict]:
    conn.request("POST", "/api/ask", body=json.dumps({"question": question}).encode(),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="page changes + re-ingests while serving")
    args = parser.parse_args()

    import yaml

    work = Path(tempfile.mkdtemp(prefix="faqbot-reindex-"))
    site = work / "site"
    shutil.copytree(FIXTURES / "site", site)
    config = work / "sources.yaml"
    config.write_text(yaml.safe_dump({"sources": [
        {"name": "site", "path": str(site), "base_url": "https://example.org/", "url_rule": "jekyll"}],
        "settings": {"index_dir": str(work / "index"), "feedback_log": str(work / "feedback.jsonl")}},
        allow_unicode=True), encoding="utf-8")
    built = cli("ingest", "--config", str(config), "--quiet")
    if built.returncode:
        raise SystemExit(built.stderr)

    port = free_port()
    with open(work / "server.log", "w", encoding="utf-8") as log:   # a file: an unread pipe could fill up
        server = subprocess.Popen([sys.executable, "-m", "faq_bot", "serve", "--config", str(config), "--port",
                                   str(port), "--rate-limit", "0"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  text=True)
    stop = threading.Event()
    counts = {"ok": 0}
    errors: list[str] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = seed
        while not stop.is_set():
            try:
                status, _ = ask(conn, QUESTIONS[i % len(QUESTIONS)])
                with lock:
                    if status == 200:
                        counts["ok"] += 1
                    else:
                        errors.append(f"HTTP {status}")
            except (OSError, http.client.HTTPException, json.JSONDecodeError) as exc:
                with lock:
                    errors.append(type(exc).__name__)
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            i += 1

    switches: list[float] = []
    ingest_seconds: list[float] = []
    try:
        wait_until_up(port, server)
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for t in threads:
            t.start()
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for round_no in range(args.rounds):
            marker = f"第{round_no}版重排序"
            with open(site / "rag.md", "a", encoding="utf-8") as f:
                f.write(f"\n## 重新排序 {round_no}\n\n{marker}：交叉編碼器在檢索之後把候選段落重新打分。\n")
            started = time.perf_counter()
            result = cli("ingest", "--config", str(config), "--quiet")
            ingest_seconds.append(time.perf_counter() - started)
            if result.returncode:
                raise SystemExit(result.stderr)
            done = time.perf_counter()
            while time.perf_counter() - done < 30:
                status, data = ask(probe, f"{marker}是什麼")
                if status == 200 and any(marker in c["snippet"] for c in data.get("citations", [])):
                    switches.append(time.perf_counter() - done)
                    break
                time.sleep(0.1)
            else:
                switches.append(float("inf"))
        stop.set()
        for t in threads:
            t.join()
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    print(f"Re-index while serving: {args.clients} clients, {args.rounds} page changes + `faq-bot ingest`")
    print(machine_line(machine()))
    print(f"requests answered: {counts['ok']}, errors: {len(errors)} {sorted(set(errors)) or ''}")
    print("ingest (one page changed): " + ", ".join(f"{s:.1f} s" for s in ingest_seconds))
    print("new text answered after the ingest finished: " + ", ".join(f"{s:.2f} s" for s in switches))
    print(target_line("failed requests during re-index", str(len(errors)), "0", not errors))
    print(target_line("answers switch without restart", "yes" if all(s < 30 for s in switches) else "no",
                      "within seconds", all(s < 30 for s in switches)))


if __name__ == "__main__":
    main()
