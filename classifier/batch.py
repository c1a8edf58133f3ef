"""Batch scoring of a whole export: chunks over worker processes, output in input order,
flat memory, a checkpoint after every chunk so an interrupted run can be resumed.

    input ─► RecordReader (parent: raw records, cut into chunks)
          ─► ChunkScorer (workers: parse, score, encode the chunk's output)
          ─► sink (parent: write in input order) ─► checkpoint

With one job everything runs in the calling process. `run_batch` is what `postsieve score`
calls; the Dask engine (`dask_engine.py`) uses the same reader, scorer and sinks per file.
"""
from __future__ import annotations

import os
import signal
import time
from collections import Counter
from dataclasses import asdict, dataclass
from itertools import chain
from typing import Callable, Iterator

from . import checkpoint as ckpt
from . import outputs, records
from .dataset import BadRow, FieldMap
from .errors import ClassifierError, ResumeError
from .model import Model
from .scoring import ScoreSummary
from .types import DECISIONS, LABELS, Post
from .workers import usable_cores

DEFAULT_CHUNK_SIZE = 1000


def default_jobs() -> int:
    """Worker processes by default: the cores this process may run on."""
    return usable_cores()


def parse_only(value: str | None) -> frozenset[str] | None:
    """`--only block,review` as a set of decisions (None: keep every post). An empty value is
    refused, not taken as no filter: `--only "$DECISIONS"` with the variable unset wrote everything."""
    if value is None:
        return None
    chosen = {v.strip() for v in value.split(",") if v.strip()}
    unknown = sorted(chosen - set(DECISIONS))
    if unknown or not chosen:
        raise ClassifierError(f"--only takes decisions among {', '.join(DECISIONS)}, got {value!r}")
    return frozenset(chosen)


@dataclass
class ChunkResult:
    """One scored chunk: its encoded output and the counts the parent adds up."""

    data: object  # bytes, or an Arrow table for Parquet
    records: int
    scored: int
    written: int
    decisions: Counter
    labels: Counter
    bad: list[BadRow]
    end_pos: int


@dataclass(frozen=True)
class ChunkScorer:
    """Parse, score and encode one chunk; what each worker process holds (the model included).

    A chunk with a bad row is not scored unless `skip_bad`: the parent stops at that row.
    """

    model: Model
    fields: FieldMap
    out_fmt: str
    gz: bool = False
    only: frozenset[str] | None = None
    skip_bad: bool = False

    def __call__(self, chunk: records.RawChunk) -> ChunkResult:
        rows = records.posts_of(chunk, self.fields)
        posts = [r for r in rows if isinstance(r, Post)]
        bad = [r for r in rows if isinstance(r, BadRow)]
        if bad and not self.skip_bad:
            return ChunkResult(b"", chunk.records, 0, 0, Counter(), Counter(), bad[:1], chunk.end_pos)
        scored = self.model.score(posts)
        decisions = Counter(s.decision for s in scored)
        labels = Counter(s.label for s in scored)
        kept = [s.to_dict() for s in scored if self.only is None or s.decision in self.only]
        data = outputs.encode(kept, self.out_fmt, gz=self.gz)
        return ChunkResult(data, chunk.records, len(scored), len(kept), decisions, labels, bad, chunk.end_pos)


@dataclass(frozen=True)
class BatchOptions:
    """What to score, how to read it and what to write."""

    input_path: str
    output_path: str = "-"
    in_fmt: str = "jsonl"
    out_fmt: str = "jsonl"
    fields: FieldMap = FieldMap()
    only: frozenset[str] | None = None
    skip_bad: bool = False
    jobs: int = 1
    chunk_size: int = DEFAULT_CHUNK_SIZE
    resume: bool = False

    def settings(self, model: Model) -> dict:
        """What a resumed run must share with the interrupted one (see checkpoint.py)."""
        size = None
        if self.input_path != "-":
            try:
                size = os.stat(self.input_path).st_size
            except OSError:
                pass
        return {"input": os.path.abspath(self.input_path) if self.input_path != "-" else "-", "input_size": size,
                **scoring_settings(model, self.in_fmt, self.out_fmt, self.fields, self.only, self.skip_bad)}


def scoring_settings(model: Model, in_fmt: str | None, out_fmt: str, fields: FieldMap,
                     only: frozenset[str] | None, skip_bad: bool) -> dict:
    """How posts are read, scored and written: what a resumed run must share with the interrupted
    one, on either engine (the local checkpoint, the Dask output's `_settings.json`)."""
    return {"input_format": in_fmt, "output_format": out_fmt, "fields": asdict(fields),
            "only": sorted(only) if only else None, "skip_bad": skip_bad, "model_version": model.version}


@dataclass
class BatchSummary(ScoreSummary):
    """Counts of a batch job; `resumed` posts were scored by the earlier, interrupted run."""

    written: int = 0
    resumed: int = 0
    records_done: int = 0
    stopped: bool = False
    already_complete: bool = False
    this_run: int = 0

    def add_chunk(self, result: ChunkResult) -> None:
        self.scored += result.scored
        self.this_run += result.scored
        self.written += result.written
        self.bad += len(result.bad)
        self.records_done += result.records
        self.decisions.update(result.decisions)
        self.labels.update(result.labels)

    def rate(self) -> float:
        return self.this_run / max(time.perf_counter() - self.started, 1e-9)

    def format(self) -> str:
        decisions = ", ".join(f"{d} {self.decisions.get(d, 0)}" for d in DECISIONS)
        labels = ", ".join(f"{label} {self.labels.get(label, 0)}" for label in LABELS)
        timing = f"{time.perf_counter() - self.started:.1f} s ({self.rate():.0f} posts/s)"
        if self.resumed:
            parts = [f"scored {self.scored} posts ({self.resumed} by the interrupted run, {self.this_run} in {timing})"]
        else:
            parts = [f"scored {self.scored} posts in {timing}"]
        parts.append(f": {decisions}; labels: {labels}")
        if self.written != self.scored:
            parts.append(f"; {self.written} written")
        if self.bad:
            parts.append(f"; {self.bad} bad row(s) skipped")
        if self.stopped:
            parts.append("; stopped early: continue with --resume")
        return "".join(parts)

    def restore(self, saved: ckpt.Checkpoint) -> None:
        self.scored = self.resumed = saved.scored
        self.bad = saved.bad
        self.written, self.records_done = saved.written, saved.records_done
        self.decisions.update(saved.decisions)
        self.labels.update(saved.labels)

    def to_checkpoint(self, settings: dict, output_at: int, complete: bool = False) -> ckpt.Checkpoint:
        return ckpt.Checkpoint(settings=settings, records_done=self.records_done, output_at=output_at,
                               scored=self.scored, bad=self.bad, written=self.written,
                               decisions=dict(self.decisions), labels=dict(self.labels), complete=complete)


class StopFlag:
    """Ctrl-C (or SIGTERM) asks the job to stop after the chunk in hand; a second Ctrl-C aborts.

    Used as a context manager around `run_batch` in the main thread; calling it says whether a
    stop was asked for.
    """

    def __init__(self, on_first: Callable[[], None] | None = None):
        self.asked = False
        self.on_first = on_first
        self._previous: dict = {}

    def __call__(self) -> bool:
        return self.asked

    def _handle(self, signum, frame):
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
        if self.on_first:
            self.on_first()

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_batch(model: Model, options: BatchOptions, *, stop: Callable[[], bool] = lambda: False,
              on_progress: Callable[[BatchSummary, int, int], None] | None = None,
              on_bad: Callable[[BadRow], None] | None = None) -> BatchSummary:
    """Score `options.input_path` into `options.output_path`; see the module docstring.

    `on_progress(summary, position, total)` is called after each chunk written (position and
    total in input bytes, or rows for Parquet; total 0 when unknown). Raises CorpusError at the
    first bad row unless `skip_bad`, ResumeError when `--resume` cannot continue safely.
    """
    summary = BatchSummary()
    out = options.output_path
    settings = options.settings(model)
    resume_at = None
    if out != "-":
        resume_at = _resume_point(options, settings, summary)
        if summary.already_complete:
            return summary
    elif options.resume:
        raise ResumeError("--resume needs an output file (stdout cannot be continued)")
    scorer = ChunkScorer(model, options.fields, options.out_fmt, gz=outputs.is_gzip(out), only=options.only,
                         skip_bad=options.skip_bad)
    pool = None
    if options.jobs > 1:  # started before files are opened: the workers inherit none of them
        from .workers import OrderedPool

        pool = OrderedPool(scorer, options.jobs)
    try:
        with records.RecordReader(options.input_path, options.in_fmt, options.fields,
                                  chunk_size=options.chunk_size, skip=summary.records_done) as reader:
            # The first chunk is read before the output is touched: the field mapping is checked
            # there, and a mistyped one used to leave a finished output empty, its checkpoint gone.
            chunks = iter(reader)
            first = next(chunks, None)
            if out != "-" and resume_at is None:
                _forget_checkpoint(out)  # a fresh start: the old checkpoint no longer describes the output
            sink = outputs.open_sink(out, options.out_fmt, resume_at=resume_at)
            if out != "-" and sink.durable_per_chunk and resume_at is None:
                # from the start, so a run stopped before its first chunk is written can be resumed
                summary.to_checkpoint(settings, sink.commit()).save(out)
            chunks = chunks if first is None else chain([first], chunks)
            finished = False
            try:
                results = pool.map(chunks, stop) if pool else map(scorer, chunks)
                _drain(results, sink, summary, options, settings, reader, stop, on_progress, on_bad)
                finished = not summary.stopped
            finally:
                sink.close()
                # byte outputs were checkpointed after every chunk; a Parquet file only now
                if out != "-" and (finished or not sink.durable_per_chunk):
                    summary.to_checkpoint(settings, sink.commit(), complete=finished).save(out)
    except BaseException:
        if pool:
            pool.terminate()
        raise
    if pool:
        pool.close()
    return summary


def _drain(results: Iterator[ChunkResult], sink, summary: BatchSummary, options: BatchOptions, settings: dict,
           reader: records.RecordReader, stop, on_progress, on_bad) -> None:
    """Write results in order, checkpointing after each; stop between chunks when asked."""
    for result in results:
        if result.bad and not options.skip_bad:
            raise records.bad_row_error(reader.name, options.in_fmt, result.bad[0])
        sink.write(result.data)
        summary.add_chunk(result)
        if sink.durable_per_chunk and options.output_path != "-":
            summary.to_checkpoint(settings, sink.commit()).save(options.output_path)
        for row in result.bad:
            if on_bad:
                on_bad(row)
        if on_progress:
            on_progress(summary, result.end_pos, reader.total)
        if stop():
            break
    summary.stopped = stop()


def _forget_checkpoint(out: str) -> None:
    if os.path.exists(ckpt.path_for(out)):
        os.unlink(ckpt.path_for(out))


def _resume_point(options: BatchOptions, settings: dict, summary: BatchSummary) -> int | None:
    """Where to continue the output (None: start it afresh), restoring the counts so far."""
    out = options.output_path
    if not options.resume:
        return None  # a fresh run: `run_batch` drops the old checkpoint once the input has been checked
    saved = ckpt.Checkpoint.load(out)
    if saved is None:
        if os.path.exists(out):
            raise ResumeError(f"cannot resume {out}: it has no checkpoint ({ckpt.path_for(out)}), so it was not "
                              "written by `postsieve score`; run again without --resume to start over")
        return None  # nothing was written yet: a resume is a fresh start
    saved.check_resumable(settings, out)
    summary.restore(saved)
    if saved.complete:
        summary.already_complete = True
        return None
    if options.out_fmt != "parquet":
        size = os.path.getsize(out) if os.path.exists(out) else -1
        if size < saved.output_at:
            raise ResumeError(f"cannot resume {out}: it is shorter ({size} bytes) than its checkpoint says "
                              f"({saved.output_at}); run again without --resume to start over")
    return saved.output_at
