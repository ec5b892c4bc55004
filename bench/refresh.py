"""Start-up from a published index and a refresh with one page changed, measured in one run on this
machine from a copy of a built index (never written to) and a copy of the corpus:

1. start: `python app.py` with an empty index folder and settings.index_url naming a packed copy of
   --index served by `python -m http.server`: seconds from the process start until /healthz answers,
   until it reports ready (index pulled and loaded), and until /api/ask first answers a question (target <= 30 s);
2. refresh: the refresh workflow's own steps (.github/workflows/refresh-index.yml, after "Install
   faq-bot"), run as written against that HTTP server and a local publish folder, on a corpus copy
   with one paragraph added to one page: `faq-bot index pull`, `ingest`, `eval` with the workflow's
   floors on the dev questions, `index pack`, `index publish` (target <= 60 s for pull + ingest +
   eval + pack). The "Tell the Space" step is left out (no Space).

    python bench/refresh.py --index bench/out/index [--corpus ../shared/corpus] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from common import DEFAULT_CORPUS, OUT, ROOT, machine, machine_line

WORKFLOW = ROOT / ".github" / "workflows" / "refresh-index.yml"
QUESTION = "你們做語音去噪最後模型多大？推論速度如何？"
TIMED_STEPS = ("Pull the last published index", "Ingest the portal", "Check answer quality on the dev questions",
               "Pack the index")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_folder(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    raise SystemExit("http.server did not start")


def config_for(path: Path, corpus: Path, index_dir: Path, index_url: str = "") -> Path:
    """The product config with its sources in `corpus`, the index in `index_dir`."""
    raw = yaml.safe_load((ROOT / "corpus" / "sources.yaml").read_text(encoding="utf-8"))
    for source in raw["sources"]:
        source["path"] = str(corpus / Path(source["path"]).name)
    raw["settings"].update(index_dir=str(index_dir), feedback_log=str(path.parent / "feedback.jsonl"))
    if index_url:
        raw["settings"]["index_url"] = index_url
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def get_json(url: str, payload: dict | None = None):
    data = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def measure_start(work: Path, index_url: str, corpus: Path) -> dict:
    config = config_for(work / "start" / "sources.yaml", corpus, work / "start" / "index", index_url)
    port = free_port()
    env = {**os.environ, "FAQ_BOT_CONFIG": str(config), "PORT": str(port), "HOST": "127.0.0.1",
           "PYTHONPATH": str(ROOT)}
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with open(work / "start" / "app.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    marks: dict[str, float] = {}
    try:
        while time.perf_counter() - started < 300:
            if proc.poll() is not None:
                raise SystemExit(f"app.py exited; see {work / 'start' / 'app.log'}")
            try:
                status, health = get_json(url + "/healthz")
                marks.setdefault("healthz", time.perf_counter() - started)
                if health.get("state") == "ready":
                    marks.setdefault("ready", time.perf_counter() - started)
                status, answer = get_json(url + "/api/ask", {"question": QUESTION})
                if status == 200:
                    marks["first_answer"] = time.perf_counter() - started
                    marks.setdefault("ready", marks["first_answer"])     # became ready between the two calls
                    marks["answerable"] = answer["answerable"]
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return marks


def measure_refresh(work: Path, index_url: str, corpus: Path) -> dict:
    changed = work / "corpus"
    shutil.copytree(corpus, changed)
    page = changed / "deep-learning-101.github.io" / "index.md"
    if not page.is_file():
        page = sorted((changed / "deep-learning-101.github.io").rglob("*.md"))[0]
    with open(page, "a", encoding="utf-8") as f:
        f.write("\n\n## 本週更新\n\n這一段是量測用的新內容：語音去噪模型加入了新的測試結果。\n")
    config = config_for(work / "refresh" / "sources.yaml", changed, work / "refresh" / "index")
    shim = work / "bin" / "faq-bot"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m faq_bot \"$@\"\n")
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}", "FAQ_BOT_CONFIG": str(config),
           "INDEX_URL": index_url, "PUBLISH_TO": str(work / "published" / "index.tar.gz"), "HF_TOKEN": "",
           "QUESTIONS": str(ROOT / "eval" / "dev.yaml"), "PYTHONPATH": str(ROOT)}
    flow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    steps = flow["jobs"]["refresh"]["steps"]
    names = [s.get("name") for s in steps]
    seconds, outputs = {}, {}
    for step in steps[names.index("Install faq-bot") + 1:]:
        if "run" not in step or step["name"] == "Tell the Space":
            continue
        started = time.perf_counter()
        result = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=work / "refresh", env=env,
                                capture_output=True, text=True)
        seconds[step["name"]] = round(time.perf_counter() - started, 2)
        outputs[step["name"]] = (result.stdout + result.stderr).strip().splitlines()[-3:]
        if result.returncode != 0:
            raise SystemExit(f"{step['name']} failed ({result.returncode}): {result.stdout}\n{result.stderr}")
    return {"page": str(page.relative_to(changed)), "seconds": seconds,
            "pull_ingest_eval_pack": round(sum(seconds[n] for n in TIMED_STEPS), 2), "tail": outputs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", required=True, help="a built index of --corpus (copied, never written)")
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="faq-bot-refresh-") as tmp:
        work = Path(tmp)
        index = Path(shutil.copytree(args.index, work / "index-copy"))
        www = work / "www"
        www.mkdir()
        packed = subprocess.run([sys.executable, "-m", "faq_bot", "index", "pack", "--index", str(index), "--output",
                                 str(www / "index.tar.gz")], cwd=ROOT, capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        if packed.returncode:
            raise SystemExit(packed.stderr)
        server, base = serve_folder(www)
        try:
            (work / "start").mkdir()
            (work / "refresh").mkdir()
            result = {"machine": machine(), "archive_mb": round((www / "index.tar.gz").stat().st_size / 1e6, 1),
                      "start": measure_start(work, base + "/index.tar.gz", Path(args.corpus)),
                      "refresh": measure_refresh(work, base + "/index.tar.gz", Path(args.corpus))}
        finally:
            server.terminate()
            server.wait()
    OUT.mkdir(exist_ok=True)
    (OUT / "refresh.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    s, r = result["start"], result["refresh"]
    print(machine_line(result["machine"]))
    print(f"archive: {result['archive_mb']} MB")
    print(f"python app.py with index_url: /healthz after {s.get('healthz', float('nan')):.1f} s, ready (index pulled and loaded, "
          f"chat up) after {s.get('ready', float('nan')):.1f} s, first answer after {s.get('first_answer', float('nan')):.1f} s "
          f"(target <= 30 s)")
    print(f"refresh with {r['page']} changed: " + ", ".join(f"{k} {v:.1f} s" for k, v in r["seconds"].items()))
    print(f"pull + ingest + eval + pack: {r['pull_ingest_eval_pack']:.1f} s (target <= 60 s)")
    for name, tail in r["tail"].items():
        print(f"  {name}: {' | '.join(tail)}")


if __name__ == "__main__":
    main()
