"""ingest()'s progress callback, which a server building its first index shows as "正在建立索引… 42%"."""
from helpers import site_copy

from faq_bot.config import load_config, with_overrides
from faq_bot.ingest import ingest


def test_progress_counts_every_embedded_text_up_to_the_total(tmp_path):
    _, config_file = site_copy(tmp_path, {"boilerplate_min_pages": 4})
    config = with_overrides(load_config(config_file), index_dir=tmp_path / "index")
    calls = []
    report = ingest(config, progress=False, log=lambda msg: None, on_progress=lambda done, total: calls.append((done, total)))
    total = report.embedded + report.sentences_embedded
    assert len(calls) > 2 and all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and calls[0][0] > 0 and calls[-1] == (total, total)
