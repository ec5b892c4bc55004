"""`faq-bot eval`: retrieval quality on a question file in the format of eval/dev.yaml.

Metrics (as that file's header defines them):
- page@k: a top-k hit's page contains the evidence phrase (several pages may);
- evidence@k: the first 500 characters of a top-k hit's own text contain the evidence;
- MRR@10: 1 / rank of the first hit whose page contains the evidence;
- abstention: for questions no page answers, the share answered with `answerable: false`;
  false abstention: the share of answerable questions wrongly refused.
Texts are compared after NFKC, dropping Markdown marks and link targets, removing white space
and lower-casing.
"""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import yaml

HIT_CHARS = 500


class EvalFileError(ValueError):
    pass


@dataclass(frozen=True)
class EvalItem:
    question: str
    kind: str
    page: str | None = None
    evidence: str | None = None

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
        items.append(EvalItem(question=entry["question"], kind=str(entry.get("kind", "")),
                              page=entry.get("page"), evidence=entry.get("evidence")))
    return items


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"[*_`#>|~]")


def match_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_MARKS.sub("", text)
    return re.sub(r"\s+", "", text).lower()


@dataclass
class EvalHit:
    page_id: str
    text: str


# A search function: question -> (answerable, ranked hits)
SearchFn = Callable[[str], tuple[bool, list[EvalHit]]]


@dataclass
class ItemResult:
    item: EvalItem
    answerable: bool
    page_rank: int | None        # 1-based rank of the first hit whose page has the evidence
    evidence_rank: int | None    # 1-based rank of the first hit whose text has it
    top_pages: list[str] = field(default_factory=list)


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
        misses = [r for r in self.results if (r.item.answerable and (r.evidence_rank is None or r.evidence_rank > 5 or not r.answerable))
                  or (not r.item.answerable and r.answerable)]
        if misses:
            lines.append("")
            lines.append("misses:")
            for r in misses:
                what = ("answered (should abstain)" if not r.item.answerable else
                        "abstained" if not r.answerable else f"evidence rank {r.evidence_rank}, page rank {r.page_rank}")
                lines.append(f"  [{r.item.kind}] {r.item.question} -> {what}")
        return "\n".join(lines)


def evaluate(search: SearchFn, items: Iterable[EvalItem], page_texts: dict[str, str], k: int = 10) -> EvalReport:
    """Run every question through `search`; `page_texts` maps page id -> the page's visible text."""
    page_keys = {p: match_key(t) for p, t in page_texts.items()}
    results = []
    for item in items:
        answerable, hits = search(item.question)
        hits = hits[:k]
        page_rank = evidence_rank = None
        if item.answerable:
            ev = match_key(item.evidence)
            for rank, hit in enumerate(hits, 1):
                if page_rank is None and ev in page_keys.get(hit.page_id, ""):
                    page_rank = rank
                if evidence_rank is None and ev in match_key(hit.text[:HIT_CHARS]):
                    evidence_rank = rank
        results.append(ItemResult(item, answerable, page_rank, evidence_rank, [h.page_id for h in hits[:5]]))
    return EvalReport(results)


def page_texts_of(chunks) -> dict[str, str]:
    """Each page's visible text, rebuilt from its chunks."""
    texts: dict[str, list[str]] = defaultdict(list)
    for c in chunks:
        texts[c.page_id].append(c.text)
    return {p: "\n".join(t) for p, t in texts.items()}


def searcher_fn(searcher, k: int = 10) -> SearchFn:
    """The product's own search as an eval search function."""
    def run(question: str):
        result = searcher.search(question, k=k)
        return result.answerable, [EvalHit(h.chunk.page_id, h.chunk.text) for h in result.hits]
    return run
