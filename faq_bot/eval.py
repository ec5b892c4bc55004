"""`faq-bot eval`: answer and retrieval quality on a question file in the format of eval/dev.yaml.

Metrics (as that file's header defines them):
- answer@evidence (the headline): the reply a visitor reads (the quoted passages of the answer the
  chat, API and widget show, from the same `answer()`) holds the evidence, and is not a refusal;
- page@k: a top-k hit's page contains the evidence phrase (several pages may);
- evidence@k: the first 500 characters of a top-k hit's own text contain the evidence;
- MRR@10: 1 / rank of the first hit whose page contains the evidence;
- abstention: for questions no page answers, the share answered with `answerable: false`;
  false abstention: the share of answerable questions wrongly refused.
Texts are compared by `textproc.eval_key` (NFKC, Markdown marks and link targets dropped, white
space removed, lower case), the same key the answer policy matches with. Follow-up items are asked
with their `history`, through the same code path as the chat.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import yaml

from .textproc import eval_key

HIT_CHARS = 500


class EvalFileError(ValueError):
    pass


@dataclass(frozen=True)
class EvalItem:
    question: str
    kind: str
    page: str | None = None
    evidence: str | None = None
    history: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return self.evidence is not None


def load_items(path: str | Path) -> list[EvalItem]:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalFileError(f"question file not found: {path}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"cannot parse {path}: {exc}") from None
    if not isinstance(raw, list) or not raw:
        raise EvalFileError(f"{path}: expected a non-empty list of questions")
    items = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("question"), str) or not entry["question"].strip():
            raise EvalFileError(f"{path}: item {i} needs a non-empty 'question'")
        if ("page" in entry) != ("evidence" in entry):
            raise EvalFileError(f"{path}: item {i} must have both 'page' and 'evidence' or neither")
        if "evidence" in entry and not all(isinstance(entry[k], str) and entry[k].strip()
                                           for k in ("page", "evidence")):
            raise EvalFileError(f"{path}: item {i}: 'page' and 'evidence' must be non-empty text")
        history = entry.get("history") or []
        if not isinstance(history, list) or not all(isinstance(h, str) and h.strip() for h in history):
            raise EvalFileError(f"{path}: item {i}: 'history' must be a list of earlier questions (text)")
        items.append(EvalItem(question=entry["question"], kind=str(entry.get("kind", "")),
                              page=entry.get("page"), evidence=entry.get("evidence"), history=tuple(history)))
    return items


@dataclass
class EvalHit:
    page_id: str
    text: str


@dataclass
class Reply:
    """What a system gave for one question: its verdict, its ranked hits, and the text a visitor
    reads (the quoted passages; a peer without answers shows its top hit)."""

    answerable: bool
    hits: list[EvalHit]
    shown: str


# An answer function: question item (question + history) -> Reply
AnswerFn = Callable[[EvalItem], Reply]


@dataclass
class ItemResult:
    item: EvalItem
    answerable: bool
    page_rank: int | None        # 1-based rank of the first hit whose page has the evidence
    evidence_rank: int | None    # 1-based rank of the first hit whose text has it
    top_pages: list[str] = field(default_factory=list)
    answer_has_evidence: bool = False   # the shown reply holds the evidence and is no refusal


@dataclass
class EvalReport:
    results: list[ItemResult]

    def _answerable(self) -> list[ItemResult]:
        return [r for r in self.results if r.item.answerable]

    def metrics(self) -> dict[str, float]:
        ans = self._answerable()
        oos = [r for r in self.results if not r.item.answerable]
        m: dict[str, float] = {}
        if ans:
            n = len(ans)
            m["answer@evidence"] = sum(r.answer_has_evidence for r in ans) / n
            m["page@1"] = sum(r.page_rank == 1 for r in ans) / n
            m["page@5"] = sum(r.page_rank is not None and r.page_rank <= 5 for r in ans) / n
            m["evidence@5"] = sum(r.evidence_rank is not None and r.evidence_rank <= 5 for r in ans) / n
            m["mrr@10"] = sum(1 / r.page_rank for r in ans if r.page_rank and r.page_rank <= 10) / n
            m["false_abstention"] = sum(not r.answerable for r in ans) / n
        if oos:
            m["abstention"] = sum(not r.answerable for r in oos) / len(oos)
        m["answerable_items"] = len(ans)
        m["unanswerable_items"] = len(oos)
        return m

    def misses(self) -> list[ItemResult]:
        """Answerable items whose reply lacks the evidence, and unanswerable items answered."""
        return [r for r in self.results if (r.item.answerable and not r.answer_has_evidence)
                or (not r.item.answerable and r.answerable)]

    def by_kind(self) -> dict[str, dict[str, float]]:
        groups: dict[str, list[ItemResult]] = defaultdict(list)
        for r in self.results:
            groups[r.item.kind or "-"].append(r)
        return {kind: EvalReport(rs).metrics() for kind, rs in sorted(groups.items())}

    def format(self) -> str:
        m = self.metrics()
        lines = [f"{name:>18}: {value:.3f}" if isinstance(value, float) else f"{name:>18}: {value}"
                 for name, value in m.items()]
        lines.append("")
        lines.append("by kind: " + "; ".join(
            f"{kind} " + " ".join(f"{k}={v:.2f}" for k, v in km.items() if isinstance(v, float))
            for kind, km in self.by_kind().items()))
        misses = self.misses()
        if misses:
            lines.append("")
            lines.append("misses:")
            for r in misses:
                lines.append(f"  [{r.item.kind}] {r.item.question} -> {describe_miss(r)}")
        return "\n".join(lines)


def quality_failures(metrics: dict[str, float], floors: dict[str, float], ceilings: dict[str, float]) -> list[str]:
    """What falls short of a quality gate: each metric in `floors` must be at least its value, each in
    `ceilings` at most (e.g. the refresh workflow publishes an index only when this is empty). A
    metric the question file cannot give (no unanswerable questions: no abstention) fails too."""
    failures = []
    for name, limit, below in [*((n, v, True) for n, v in floors.items()), *((n, v, False) for n, v in ceilings.items())]:
        value = metrics.get(name)
        if value is None:
            failures.append(f"{name}: not measured by this question file")
        elif below and value < limit:
            failures.append(f"{name} {value:.3f} is below the floor {limit:.3f}")
        elif not below and value > limit:
            failures.append(f"{name} {value:.3f} is above the ceiling {limit:.3f}")
    return failures


def describe_miss(r: ItemResult) -> str:
    if not r.item.answerable:
        return "answered (should abstain)"
    if not r.answerable:
        return f"abstained (evidence rank {r.evidence_rank})"
    return f"reply lacks the evidence (evidence rank {r.evidence_rank}, page rank {r.page_rank})"


def evaluate(answer_fn: AnswerFn, items: Iterable[EvalItem], page_texts: dict[str, str], k: int = 10) -> EvalReport:
    """Run every question through `answer_fn`; `page_texts` maps page id -> the page's visible text."""
    page_keys = {p: eval_key(t) for p, t in page_texts.items()}
    results = []
    for item in items:
        reply = answer_fn(item)
        hits = reply.hits[:k]
        page_rank = evidence_rank = None
        has_evidence = False
        if item.answerable:
            ev = eval_key(item.evidence)
            for rank, hit in enumerate(hits, 1):
                if page_rank is None and ev in page_keys.get(hit.page_id, ""):
                    page_rank = rank
                if evidence_rank is None and ev in eval_key(hit.text[:HIT_CHARS]):
                    evidence_rank = rank
            has_evidence = reply.answerable and ev in eval_key(reply.shown)
        results.append(ItemResult(item, reply.answerable, page_rank, evidence_rank, [h.page_id for h in hits[:5]],
                                  has_evidence))
    return EvalReport(results)


def page_texts_of(chunks) -> dict[str, str]:
    """Each page's visible text, rebuilt from its chunks."""
    texts: dict[str, list[str]] = defaultdict(list)
    for c in chunks:
        texts[c.page_id].append(c.text)
    return {p: "\n".join(t) for p, t in texts.items()}


def answer_fn(searcher, k: int = 10, writer=None) -> AnswerFn:
    """The product's own answer (the one the chat, API and widget show) as an eval answer function;
    with a `generate.Writer`, the written answer (its text and the passages shown under it)."""
    from .answer import answer

    def run(item: EvalItem) -> Reply:
        reply = answer(searcher, item.question, list(item.history), k=k)
        if writer is not None:
            reply = writer.write(searcher, reply, list(item.history))
        return Reply(reply.answerable, [EvalHit(h.chunk.page_id, h.chunk.text) for h in reply.hits],
                     reply.shown_text())
    return run
