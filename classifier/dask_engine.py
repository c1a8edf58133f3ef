"""Score partitioned input on a Dask distributed cluster (the optional `dask` extra).

One task per input file: it reads the file (local path or fsspec URL), scores it chunk by chunk
with the same `ChunkScorer` as the local engine, and writes one part file, under a temporary
name first and renamed when complete. The model is scattered to every worker once (broadcast)
and each task receives that copy. Parts are numbered in sorted input order, so reading
`part-00000...`, `part-00001...` in order gives the single-machine output post for post.

    OUTPUT/part-00000.jsonl     scored posts of the first input file
    OUTPUT/_counts/part-00000.json   its counts; a part with both files is done (--resume skips it)
    OUTPUT/_counts/_settings.json    what the parts are made with; --resume must use the same
"""
from __future__ import annotations

import json
import logging
import posixpath
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from . import outputs, parquet, records
from .batch import BatchSummary, ChunkScorer, DEFAULT_CHUNK_SIZE, default_jobs, scoring_settings
from .checkpoint import check_same_settings
from .dataset import FieldMap, file_format
from .errors import ClassifierError, MissingExtra
from .model import Model

#: File names a directory input is expanded to.
INPUT_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".jsonl.gz", ".json.gz", ".ndjson.gz", ".csv.gz",
                  ".parquet", ".pq")
#: Bad rows reported per part (all are counted).
MAX_BAD_REPORTED = 100


def require_dask():
    """dask.distributed and fsspec, or MissingExtra naming the extra to install."""
    try:
        import distributed
        import fsspec
    except ImportError:
        raise MissingExtra.of("--engine dask", "dask", "dask[distributed]") from None
    return distributed, fsspec


@contextmanager
def connect(scheduler: str | None, config_file: str | None = None, *, local_workers: int | None = None,
            say: Callable[[str], None] = lambda message: None) -> Iterator:
    """A distributed Client: to `scheduler` (address or scheduler file), else to the Dask config's
    `scheduler-address`, else to a local cluster of `local_workers` single-threaded processes."""
    distributed, _ = require_dask()
    import os

    import dask
    import yaml  # a dependency of dask

    if config_file:
        with open(config_file) as f:
            dask.config.update(dask.config.config, yaml.safe_load(f) or {}, priority="new")
    address = scheduler or dask.config.get("scheduler-address", None)
    if address and os.path.isfile(address):
        client = distributed.Client(scheduler_file=address)
    elif address:
        say(f"connecting to the Dask scheduler at {address}")
        client = distributed.Client(address, timeout="30s")
    else:
        workers = local_workers or default_jobs()
        say(f"no --scheduler and no scheduler-address in the Dask config: starting a local cluster of {workers} "
            "worker processes")
        # silence_logs: a failed task is reported once, as one line, by `postsieve score`; the
        # workers' own "Compute Failed" blocks with tracebacks only repeated it
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.CRITICAL)
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if not address:
            cluster.close()


@dataclass(frozen=True)
class Part:
    """One input file and the part file it is scored into."""

    index: int
    input: str
    in_fmt: str
    output: str
    counts: str


def score_part(scorer: ChunkScorer, part: Part, chunk_size: int) -> dict:
    """Score one input file into its part file (runs on a Dask worker); returns its counts."""
    _, fsspec = require_dask()
    in_fs, in_path = fsspec.core.url_to_fs(part.input)
    out_fs, out_path = fsspec.core.url_to_fs(part.output)
    summary = BatchSummary()
    bad = []
    tmp = out_path + ".partial"
    with in_fs.open(in_path, "rb") as raw, \
            records.RecordReader(raw, part.in_fmt, scorer.fields, name=part.input, chunk_size=chunk_size) as reader, \
            out_fs.open(tmp, "wb") as out:
        writer = outputs.PartWriter(out, scorer.out_fmt)
        for chunk in reader:
            result = scorer(chunk)
            if result.bad and not scorer.skip_bad:
                raise records.bad_row_error(part.input, part.in_fmt, result.bad[0])
            writer.write(result.data)
            summary.add_chunk(result)
            bad.extend((records.where(part.input, part.in_fmt, b.line), b.error) for b in result.bad)
        writer.close()
    out_fs.mv(tmp, out_path)
    counts = {"part": part.index, "input": part.input, "scored": summary.scored, "bad": summary.bad,
              "written": summary.written, "decisions": dict(summary.decisions), "labels": dict(summary.labels),
              "bad_rows": bad[:MAX_BAD_REPORTED]}
    with out_fs.open(fsspec.core.url_to_fs(part.counts)[1], "w") as f:
        json.dump(counts, f)
    return counts


def check_mapping(part: Part, fields: FieldMap) -> None:
    """Check the field mapping against the input's header, schema or first record (the first chunk
    of one record reads no further), raising ColumnMappingError: before anything is scored, as the
    local engine does, rather than as a failed task after other parts were scored."""
    _, fsspec = require_dask()
    in_fs, in_path = fsspec.core.url_to_fs(part.input)
    try:
        with in_fs.open(in_path, "rb") as raw:
            if part.in_fmt == "parquet":  # the footer's schema: a batch of one row reads a whole row group
                parquet.mapped_columns(parquet.open_file(raw), fields, path=part.input)
                return
            with records.RecordReader(raw, part.in_fmt, fields, name=part.input, chunk_size=1) as reader:
                next(iter(reader), None)
    except ClassifierError:
        raise
    except (OSError, EOFError, ValueError) as exc:  # not gzip or Parquet after all, cut short, unreadable
        raise ClassifierError(f"{part.input}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None


#: In OUTPUT/_counts: the settings of the run, which a resume must share.
SETTINGS_FILE = "_settings.json"


class DaskJob:
    """Plan and run `score --engine dask` (see the module docstring)."""

    def __init__(self, input: str, output: str, *, in_fmt: str | None = None, out_fmt: str = "jsonl",
                 fields: FieldMap = FieldMap(), only: frozenset[str] | None = None, skip_bad: bool = False,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, resume: bool = False):
        self.input, self.output = input, output
        self.in_fmt, self.out_fmt = in_fmt, out_fmt
        self.fields, self.only, self.skip_bad = fields, only, skip_bad
        self.chunk_size, self.resume = chunk_size, resume

    def plan(self) -> list[Part]:
        """The parts to score: every input file, in sorted order, with its output names."""
        _, fsspec = require_dask()
        fs, path = fsspec.core.url_to_fs(self.input)
        if fs.isdir(path):
            found = sorted(p for p in fs.find(path) if p.lower().endswith(INPUT_SUFFIXES)
                           and not posixpath.basename(p).startswith(("_", ".")))
        elif any(c in path for c in "*?["):  # hidden and bookkeeping files are no input, as in a directory
            found = sorted(p for p in fs.glob(path) if not posixpath.basename(p).startswith(("_", ".")))
        else:
            found = [path] if fs.isfile(path) else []
        if not found:
            raise ClassifierError(f"{self.input}: no input files found (a directory, a glob or a file of "
                                  f"{', '.join(INPUT_SUFFIXES)})")
        if self.out_fmt == "parquet" or any(file_format(p, self.in_fmt) == "parquet" for p in found):
            parquet.require_pyarrow()  # here, rather than as a failure in every task
        out_fs, out_root = fsspec.core.url_to_fs(self.output)
        ext = self.out_fmt
        parts = []
        for i, p in enumerate(found):
            url = fs.unstrip_protocol(p) if "://" in self.input else p
            fmt = file_format(p, self.in_fmt)
            name = f"part-{i:05d}.{ext}"
            parts.append(Part(i, url, fmt, out_fs.unstrip_protocol(posixpath.join(out_root, name)),
                              out_fs.unstrip_protocol(posixpath.join(out_root, "_counts", name + ".json"))))
        for part in parts:
            check_mapping(part, self.fields)
        if out_fs.exists(out_root) and not self.resume:
            # finished parts only: those of a run stopped by a bad row or Ctrl-C are started afresh
            existing = [p for p in out_fs.ls(out_root, detail=False)
                        if posixpath.basename(p).startswith("part-") and not p.endswith(".partial")]
            if existing:
                raise ClassifierError(f"{self.output} already holds part files: continue with --resume, or remove "
                                      "them to start over")
        return parts

    def run(self, client, model: Model, parts: list[Part],
            on_part: Callable[[BatchSummary, int, int], None] | None = None,
            on_bad: Callable[[str, str], None] | None = None) -> BatchSummary:
        """Score the parts on the cluster behind `client`; parts already done are skipped if resuming.

        `on_part(summary, done, total)` follows each part finished: `done` of `total` counts the
        input's parts, so on a resumed run both, like the summary's posts, include the parts the
        interrupted run finished.
        """
        distributed, fsspec = require_dask()
        out_fs, out_root = fsspec.core.url_to_fs(self.output)
        out_fs.makedirs(posixpath.join(out_root, "_counts"), exist_ok=True)
        self._check_settings(out_fs, posixpath.join(out_root, "_counts", SETTINGS_FILE), model, parts)
        summary = BatchSummary()
        todo = []
        for part in parts:
            done = self.resume and out_fs.exists(fsspec.core.url_to_fs(part.output)[1]) \
                and out_fs.exists(fsspec.core.url_to_fs(part.counts)[1])
            if done:
                with out_fs.open(fsspec.core.url_to_fs(part.counts)[1]) as f:
                    _add_counts(summary, json.load(f), resumed=True)
            else:
                todo.append(part)
        if not todo:
            return summary
        scorer = ChunkScorer(model, self.fields, self.out_fmt, only=self.only, skip_bad=self.skip_bad)
        shipped = client.scatter(scorer, broadcast=True)  # the model travels to each worker once
        futures = [client.submit(score_part, shipped, part, self.chunk_size, pure=False) for part in todo]
        try:
            for n, future in enumerate(distributed.as_completed(futures), 1):
                counts = future.result()
                _add_counts(summary, counts)
                for where, error in counts["bad_rows"]:
                    if on_bad:
                        on_bad(where, error)
                if on_part:  # parts done of all the input's, those of an interrupted run included
                    on_part(summary, len(parts) - len(todo) + n, len(parts))
        except BaseException:
            client.cancel(futures)
            raise
        return summary

    def _check_settings(self, out_fs, path: str, model: Model, parts: list[Part]) -> None:
        """Record what the parts are made with; a resume must use the same (as the local engine's
        checkpoint requires), or finished and new parts would differ in filter, format or model."""
        settings = {"inputs": [part.input for part in parts],
                    **scoring_settings(model, self.in_fmt, self.out_fmt, self.fields, self.only, self.skip_bad)}
        if self.resume and out_fs.exists(path):
            with out_fs.open(path) as f:
                check_same_settings(json.load(f), settings, self.output)
        with out_fs.open(path, "w") as f:
            json.dump(settings, f)


def _add_counts(summary: BatchSummary, counts: dict, resumed: bool = False) -> None:
    summary.scored += counts["scored"]
    summary.bad += counts["bad"]
    summary.written += counts["written"]
    summary.decisions.update(counts["decisions"])
    summary.labels.update(counts["labels"])
    if resumed:
        summary.resumed += counts["scored"]
    else:
        summary.this_run += counts["scored"]
