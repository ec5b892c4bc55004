"""Answer and retrieval quality of faq-bot on a question file (default ../shared/eval/dev.yaml), side
by side with two peers built here from the same files. The headline is answer@evidence: the reply a
visitor reads (faq-bot: the quoted passages of `answer()`, the chat's and API's answer; a peer: its top
hit's 400 characters) holds the evidence. The peers:

- bm25-400: plain BM25 (bm25s, its defaults) over fixed 400-character windows, words cut by the
  product's own jieba word cutter (`faq_bot.textproc.word_cutter`), so tokenisation is not the
  difference; the question is cut the same way, with no Simplified->Traditional conversion.
- dense-400: the usual tutorial recipe: the same windows embedded with the same model as the
  product (`make_embedder(backend, model)` from the config, `embed_passages`), FAISS IndexFlatIP,
  the question embedded with `embed_queries`, top 10 by cosine.

How the peers read the pages (the naive way a tutorial does, decided here): every file the
product's config selects (`faq_bot.sources.list_files`, so both see the same pages) is decoded as
UTF-8; Markdown is kept raw (front matter, Liquid tags and Markdown marks included, as a text
loader gives it); HTML loses <script>/<style> blocks, comments and tags by regular expression, and
its entities are unescaped. Runs of spaces and blank lines are collapsed. Each page is then cut into
consecutive 400-character windows with no overlap (`--peer-overlap` to change); a hit shows its
window's text. Peers never abstain, so their abstention is 0 and their false abstention 0.

Every system is scored by the same code, `faq_bot.eval.evaluate` (metrics as dev.yaml's header
defines them), against the same page texts: a page "contains the evidence" if its visible text as
the product parses it (`faq_bot.clean.parse_page`, before boilerplate removal) or its peer text
does, so page@k does not depend on which system cleaned the page.

Embedding the peer windows takes about 10 minutes on 2 cores the first time; the vectors are
cached in bench/out/peer-vectors-*.npz (keyed by a hash of model and window text), so later runs
take seconds.

    python bench/quality.py --index /tmp/idx_full          # an existing product index
    python bench/quality.py [--corpus ../shared/corpus]    # builds/updates bench/out/index first
    python bench/quality.py --index DIR --json             # machine-readable output
"""
from __future__ import annotations

import argparse
import hashlib
import html
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import (
    DEFAULT_CORPUS,
    DEFAULT_QUESTIONS,
    OUT,
    has_index,
    log,
    machine,
    machine_line,
    make_config,
    table,
    target_line,
    write_json,
)

from faq_bot.clean import SkipFile, parse_page
from faq_bot.embed import embed_in_batches, make_embedder
from faq_bot.eval import EvalHit, EvalItem, Reply, answer_fn, describe_miss, evaluate, load_items, page_texts_of
from faq_bot.ingest import ingest
from faq_bot.retrieve import Searcher
from faq_bot.sources import list_files
from faq_bot.textproc import word_cutter

WINDOW = 400
K = 10
METRICS = ("answer@evidence", "page@1", "page@5", "evidence@5", "mrr@10", "abstention", "false_abstention")

# Issue 7's targets.
TARGET_ANSWER = 0.90
TARGET_ANSWER_KINDS = {"english": 0.85, "followup": 0.85, "simplified": 0.85}
TARGET_EVIDENCE5 = 0.93
TARGET_ABSTENTION = 0.90
TARGET_FALSE_ABSTENTION = 0.05


# ---------------------------------------------------------------- the peers' naive reading

_SCRIPT_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG = re.compile(r"<[^>]+>", re.DOTALL)
_SPACES = re.compile(r"[ \t\r\f\v\u3000]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")


def naive_text(path: str, data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    if path.lower().endswith((".html", ".htm")):
        text = _COMMENT.sub(" ", _SCRIPT_STYLE.sub(" ", text))
        text = html.unescape(_TAG.sub(" ", text))
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n", text).strip()


def windows(text: str, size: int = WINDOW, overlap: int = 0) -> list[str]:
    step = size - overlap
    return [text[i:i + size] for i in range(0, max(len(text) - overlap, 1), step) if text[i:i + size].strip()]


@dataclass
class Window:
    page_id: str
    text: str


def read_corpus(config, overlap: int) -> tuple[list[Window], dict[str, str], dict[str, str]]:
    """The peers' windows, their per-page text, and the product parser's visible text per page."""
    out: list[Window] = []
    naive: dict[str, str] = {}
    visible: dict[str, str] = {}
    for source in config.sources:
        for f in list_files(source):
            page_id = f"{source.name}/{f.path}"
            data = f.abs_path.read_bytes()
            text = naive_text(f.path, data)
            naive[page_id] = text
            out += [Window(page_id, w) for w in windows(text, WINDOW, overlap)]
            try:
                page = parse_page(source, f, data)
                visible[page_id] = "\n".join(b for s in page.sections for b in s.blocks)
            except SkipFile:
                pass
    return out, naive, visible


# ---------------------------------------------------------------- peer A: BM25

def peer_question(item: EvalItem) -> str:
    """A peer searches a follow-up together with the previous question (as the product does)."""
    return f"{item.history[-1]} {item.question}" if item.history else item.question


def peer_reply(hits: list[EvalHit]) -> Reply:
    """Peers never abstain; the answer a visitor would read is their top hit (its 400 characters)."""
    return Reply(True, hits, hits[0].text[:WINDOW] if hits else "")


def bm25_peer(wins: list[Window]):
    import bm25s

    cutter = word_cutter()
    retriever = bm25s.BM25()
    retriever.index([cutter.tokens(w.text) or [""] for w in wins], show_progress=False)
    vocab = retriever.vocab_dict

    def search(item: EvalItem) -> Reply:
        ids = [vocab[t] for t in dict.fromkeys(cutter.tokens(peer_question(item))) if t in vocab]
        if not ids:
            return Reply(True, [], "")
        scores = retriever.get_scores(ids)
        top = np.argsort(-scores, kind="stable")[:K]
        return peer_reply([EvalHit(wins[i].page_id, wins[i].text) for i in top if scores[i] > 0])

    return search


# ---------------------------------------------------------------- peer B: dense, cached vectors

def _key(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\0{text}".encode()).hexdigest()[:32]


def cached_passage_vectors(embedder, texts: list[str], batch_size: int, cache: Path) -> tuple[np.ndarray, int, int]:
    """Vectors of `texts`, from the cache where it has them; the rest embedded once per distinct
    text (saved as it goes, so an interrupted run keeps what it computed). Returns the vectors,
    how many distinct texts there are and how many of them were embedded now."""
    model_id = f"{embedder.backend}:{embedder.model}"
    keys = [_key(model_id, t) for t in texts]
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        with np.load(cache) as data:
            known = dict(zip(data["keys"].tolist(), data["vectors"]))

    def save() -> None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, keys=np.array(list(known), dtype="U32"),
                 vectors=np.stack(list(known.values())).astype(np.float32))
        tmp.replace(cache)

    todo = sorted({k: i for i, k in enumerate(keys) if k not in known}.values())
    if todo:
        log(f"dense-400: embedding {len(todo)} of {len(set(keys))} distinct windows (not cached yet; "
            f"~5 windows/s on 2 cores)")
        started = time.perf_counter()
        chunk = batch_size * 16
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            vectors = embed_in_batches(embedder, [texts[i] for i in part], batch_size)
            for i, v in zip(part, vectors):
                known[keys[i]] = v
            save()
            done = start + len(part)
            rate = done / (time.perf_counter() - started)
            log(f"  {done}/{len(todo)} windows, {rate:.1f}/s, ~{(len(todo) - done) / rate:.0f} s left")
    return np.stack([known[k] for k in keys]).astype(np.float32), len(set(keys)), len(todo)


def dense_peer(wins: list[Window], embedder, batch_size: int, cache: Path):
    import faiss

    vectors, distinct, embedded = cached_passage_vectors(embedder, [w.text for w in wins], batch_size, cache)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)

    def search(item: EvalItem) -> Reply:
        _, ids = index.search(embedder.embed_queries([peer_question(item)]), K)
        return peer_reply([EvalHit(wins[i].page_id, wins[i].text) for i in ids[0] if i >= 0])

    return search, distinct, embedded


# ---------------------------------------------------------------- report

def _row(name: str, metrics: dict) -> list:
    return [name] + [metrics.get(m) for m in METRICS] + [int(metrics.get("answerable_items", 0)),
                                                         int(metrics.get("unanswerable_items", 0))]


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "-" if v is None else str(v)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", metavar="DIR", help="an existing product index (default: build or update "
                                                      "bench/out/index from --corpus)")
    parser.add_argument("--corpus", metavar="DIR", default=str(DEFAULT_CORPUS),
                        help="folder holding the sources by folder name (default ../shared/corpus); "
                             "the peers always read it")
    parser.add_argument("--config", metavar="FILE", help="product config (default corpus/sources.yaml)")
    parser.add_argument("--questions", metavar="FILE", default=str(DEFAULT_QUESTIONS))
    parser.add_argument("--peer-overlap", type=int, default=0, metavar="N",
                        help="characters shared by consecutive peer windows (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    args = parser.parse_args()
    if not 0 <= args.peer_overlap < WINDOW:
        parser.error(f"--peer-overlap must be in 0..{WINDOW - 1}")

    info = machine()
    index_dir = Path(args.index) if args.index else OUT / "index"
    config = make_config(args.config, args.corpus, index_dir)
    if args.index is None:
        log(f"product: ingesting {args.corpus} into {index_dir} (only changed chunks are embedded)")
        log(ingest(config, progress=sys.stderr.isatty(), log=log).summary())
    elif not has_index(index_dir):
        parser.error(f"--index {index_dir}: no index there (run `faq-bot ingest --index {index_dir}` or omit --index)")
    items = load_items(args.questions)

    searcher = Searcher.open(config)
    wins, naive_pages, visible = read_corpus(config, args.peer_overlap)
    product_pages = {c.page_id for c in searcher.index.chunks}
    notes = []
    not_in_index = sorted(set(visible) - product_pages)
    if not_in_index:
        notes.append(f"{len(not_in_index)} page(s) the product parses are not in the index "
                     f"(index built from another corpus, or empty after boilerplate removal): "
                     f"{', '.join(not_in_index[:5])}{' ...' if len(not_in_index) > 5 else ''}")
    # The same yardstick for every system: a page contains the evidence if its visible text (as
    # parsed, before boilerplate removal), its indexed text or its naive text does.
    indexed = page_texts_of(searcher.index.chunks)
    page_texts = {p: "\n".join(filter(None, (visible.get(p), indexed.get(p), naive_pages.get(p))))
                  for p in set(visible) | set(indexed) | set(naive_pages)}

    settings = config.settings
    systems = {}
    log(f"product: {len(items)} questions on {searcher.index.build_dir} ({len(searcher.index.chunks)} chunks)")
    systems["faq-bot"] = evaluate(answer_fn(searcher, k=K), items, page_texts, k=K)

    log(f"bm25-400: {len(wins)} windows of {WINDOW} characters, overlap {args.peer_overlap}")
    systems["bm25-400"] = evaluate(bm25_peer(wins), items, page_texts, k=K)

    # the product's embedder when it is the same model (it is: the index records it), else a new one
    embedder = searcher.embedder
    if (embedder.backend, embedder.model) != (settings.embed_backend, settings.embed_model):
        embedder = make_embedder(settings.embed_backend, settings.embed_model)
    cache = OUT / f"peer-vectors-{embedder.backend}-{re.sub(r'[^A-Za-z0-9.-]+', '_', embedder.model)}.npz"
    started = time.perf_counter()
    dense_search, distinct, embedded = dense_peer(wins, embedder, settings.embed_batch_size, cache)
    cache_note = (f"dense-400: {len(wins)} windows, {distinct} distinct texts: {distinct - embedded} vectors from the "
                  f"cache {cache.relative_to(OUT.parent.parent)}, {embedded} embedded now "
                  f"({time.perf_counter() - started:.0f} s)")
    systems["dense-400"] = evaluate(dense_search, items, page_texts, k=K)

    metrics = {name: report.metrics() for name, report in systems.items()}
    for name in ("bm25-400", "dense-400"):       # peers never abstain; say so as the numbers show it
        metrics[name]["abstention"] = 0.0 if metrics[name].get("unanswerable_items") else None
    product = metrics["faq-bot"]
    by_kind = systems["faq-bot"].by_kind()
    abstention = product.get("abstention", float("nan"))
    targets = [  # (what, value, shown, wanted, pass)
        ("answer@evidence", product["answer@evidence"], f"{product['answer@evidence']:.3f}",
         f">= {TARGET_ANSWER:.2f}", product["answer@evidence"] >= TARGET_ANSWER)]
    for kind, wanted in TARGET_ANSWER_KINDS.items():
        value = by_kind.get(kind, {}).get("answer@evidence", float("nan"))
        targets.append((f"answer@evidence, {kind}", value, f"{value:.3f}", f">= {wanted:.2f}", value >= wanted))
    targets.append(("false abstention on answerable", product["false_abstention"],
                    f"{product['false_abstention']:.3f}", f"<= {TARGET_FALSE_ABSTENTION:.2f}",
                    product["false_abstention"] <= TARGET_FALSE_ABSTENTION))
    worst = max(((k, m["false_abstention"]) for k, m in by_kind.items() if "false_abstention" in m),
                key=lambda km: km[1], default=("-", 0.0))
    targets.append((f"false abstention in every kind (worst: {worst[0]})", worst[1], f"{worst[1]:.3f}",
                    f"<= {TARGET_FALSE_ABSTENTION:.2f}", worst[1] <= TARGET_FALSE_ABSTENTION))
    targets.append(("abstention on out-of-scope (oos + oos-near)", abstention, f"{abstention:.3f}",
                    f">= {TARGET_ABSTENTION:.2f}", abstention >= TARGET_ABSTENTION))
    targets.append(("evidence@5", product["evidence@5"], f"{product['evidence@5']:.3f}",
                    f">= {TARGET_EVIDENCE5:.2f}", product["evidence@5"] >= TARGET_EVIDENCE5))
    best_peer = max(("bm25-400", "dense-400"), key=lambda n: metrics[n]["answer@evidence"])
    margin = product["answer@evidence"] - metrics[best_peer]["answer@evidence"]
    notes.append(f"answer@evidence over the better peer ({best_peer}, its top hit as the answer): "
                 f"{100 * margin:+.1f} points")
    peer_by_kind = {name: systems[name].by_kind() for name in ("bm25-400", "dense-400")}
    misses = systems["faq-bot"].misses()
    result = {
        "machine": info,
        "questions": str(args.questions),
        "index": str(searcher.index.build_dir),
        "corpus": str(args.corpus),
        "peer_windows": len(wins), "peer_window_chars": WINDOW, "peer_overlap": args.peer_overlap,
        "metrics": metrics,
        "by_kind": {"faq-bot": by_kind, **peer_by_kind},
        "targets": [{"target": t, "value": v, "shown": shown, "wanted": w, "pass": ok}
                    for t, v, shown, w, ok in targets],
        "product_misses": [{"question": r.item.question, "kind": r.item.kind, "answerable": r.answerable,
                            "evidence_rank": r.evidence_rank, "page_rank": r.page_rank,
                            "miss": describe_miss(r)} for r in misses],
        "notes": notes + [cache_note],
    }
    write_json(OUT / "quality.json", result)
    if args.json:
        import json

        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0

    headers = ["system"] + list(METRICS) + ["answerable", "unanswerable"]
    print(f"Answer and retrieval quality on {args.questions} ({len(items)} questions), top {K}")
    print(machine_line(info))
    print(f"product index: {searcher.index.build_dir} ({len(searcher.index.chunks)} chunks); peers: "
          f"{len(wins)} windows of {WINDOW} characters, overlap {args.peer_overlap}")
    print()
    print(table(headers, [_row(n, m) for n, m in metrics.items()], fmt=_fmt))
    print()
    print("faq-bot by kind (abstention on oos/oos-near rows; the others are answerable):")
    print(table(["kind"] + list(METRICS) + ["answerable", "unanswerable"],
                [_row(kind, m) for kind, m in by_kind.items()], fmt=_fmt))
    print()
    print("peers by kind, evidence@5 (bm25-400 / dense-400):  " + "; ".join(
        f"{kind} {peer_by_kind['bm25-400'][kind].get('evidence@5', 0):.2f}/"
        f"{peer_by_kind['dense-400'][kind].get('evidence@5', 0):.2f}"
        for kind in peer_by_kind["bm25-400"] if "evidence@5" in peer_by_kind["bm25-400"][kind]))
    print()
    print("targets (issue 7):")
    for t, _, shown, w, ok in targets:
        print(target_line(t, shown, w, ok))
    if misses:
        print()
        print("faq-bot misses:")
        for r in misses:
            print(f"  [{r.item.kind}] {r.item.question} -> {describe_miss(r)}")
    print()
    for note in notes + [cache_note]:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
