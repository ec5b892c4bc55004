"""`faq-bot index pack|pull|publish`: move a built index as one archive file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import artifact
from . import common


def register(sub) -> None:
    p = sub.add_parser("index", help="pack the index into one file, pull one in, or publish one",
                       description="Move a built index as one archive: manifest, files and a checksum list.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    pack = actions.add_parser("pack", help="write the live index build as one archive",
                              description="Writes the live build (manifest, files, SHA256SUMS) as one .tar.gz.")
    common.add_config_options(pack)
    pack.add_argument("--output", "-o", metavar="FILE", required=True, help="the archive to write, e.g. index.tar.gz")
    pack.set_defaults(run=run_pack)

    pull = actions.add_parser("pull", help="download, verify and install an index archive",
                              description="Downloads an archive (http(s) URL or path; default: settings.index_url), "
                                          "checks its checksums and that it was built with the configured model, "
                                          "and installs it as a new build through the same atomic switch as ingest. "
                                          "A truncated, corrupt or mismatched archive is refused; the index stays.")
    common.add_config_options(pull)
    pull.add_argument("source", nargs="?", metavar="URL|PATH", help="the archive (default: settings.index_url)")
    pull.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    pull.set_defaults(run=run_pull)

    publish = actions.add_parser("publish", help="check an archive and put it where servers pull from",
                                 description="Checks the archive as a pull would, then copies it to a file path "
                                             "(atomically) or commits it to hf://datasets/OWNER/NAME/PATH "
                                             "(token from $HF_TOKEN). Prints the location to pull from.")
    common.add_config_options(publish)
    publish.add_argument("archive", metavar="FILE", help="an archive written by `faq-bot index pack`")
    publish.add_argument("--to", metavar="DEST", required=True,
                         help="a file path or folder, or hf://datasets/OWNER/NAME/PATH/IN/REPO")
    publish.set_defaults(run=run_publish)


def run_pack(args: argparse.Namespace) -> int:
    config = common.load(args)
    output = Path(args.output)
    manifest = artifact.pack(Path(config.settings.index_dir), output)
    print(f"packed {manifest.page_count} pages, {manifest.chunk_count} chunks ({manifest.backend}:{manifest.model}, "
          f"built {manifest.built_at}) into {output} ({artifact.size_text(output.stat().st_size)})")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    config = common.load(args)
    settings = config.settings
    source = args.source or settings.index_url
    if not source:
        raise common.ConfigError("give the archive to pull (URL or path), or set settings.index_url in the config")
    from tqdm import tqdm

    with tqdm(unit="B", unit_scale=True, desc="downloading", file=sys.stderr,
              disable=args.quiet or not sys.stderr.isatty()) as bar:
        def progress(done: int, total: int | None) -> None:
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        report, _ = artifact.pull(source, Path(settings.index_dir), settings.embed_backend, settings.embed_model,
                                  progress=progress)
    if not args.quiet:
        print(report.summary())
    return 0


def run_publish(args: argparse.Namespace) -> int:
    settings = common.load(args).settings
    where = artifact.publish(Path(args.archive), args.to, settings.embed_backend, settings.embed_model)
    print(f"published {args.archive} to {where}")
    return 0
