"""The checkpoint beside a batch output: how far the run got, so `--resume` can continue it.

`OUTPUT.checkpoint.json` is rewritten (atomically: temporary file, then rename) each time a
chunk is safely in the output. It records how many input records are done, where the output may
be cut (a byte offset at a chunk boundary, or the row count of a closed Parquet file), the
counts so far, and what must not change between the runs: input, formats, field mapping,
filters and model version. Counting the records in the output instead would not work with
`--only` (filtered posts leave no record) nor with gzip (a cut member is unreadable).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from .errors import ResumeError

SUFFIX = ".checkpoint.json"


def path_for(output_path: str) -> str:
    return output_path + SUFFIX


@dataclass
class Checkpoint:
    """Progress of one batch job; `settings` must be equal for a resume to be allowed."""

    settings: dict
    records_done: int = 0
    output_at: int = 0  # bytes (JSONL, CSV) or rows (Parquet) of output to keep
    scored: int = 0
    bad: int = 0
    written: int = 0
    decisions: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    complete: bool = False

    def save(self, output_path: str) -> None:
        target = path_for(output_path)
        tmp = target + ".tmp"
        with open(tmp, "w") as f:
            json.dump(asdict(self), f)
        os.replace(tmp, target)

    @classmethod
    def load(cls, output_path: str) -> "Checkpoint | None":
        """The checkpoint of an output, or None if there is none."""
        try:
            with open(path_for(output_path)) as f:
                data = json.load(f)
            return cls(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise ResumeError(f"{path_for(output_path)}: unreadable checkpoint ({exc})") from None

    def check_resumable(self, settings: dict, output_path: str) -> None:
        """Raise ResumeError when this run differs from the interrupted one in what matters."""
        check_same_settings(self.settings, settings, output_path)


#: How the command line (or the user) names each setting a resume must keep.
SETTING_NAMES = {"input": "the input", "inputs": "the input files", "input_size": "the input's size in bytes",
                 "input_format": "--input-format", "output_format": "--output-format",
                 "fields": "the field mapping", "only": "--only", "skip_bad": "--skip-bad",
                 "model_version": "the model version"}


def check_same_settings(before: dict, now: dict, output_path: str) -> None:
    """Raise ResumeError naming every setting that differs from the interrupted run's."""
    changed = [f"{SETTING_NAMES.get(key, key)} was {_shown(before.get(key))}, now {_shown(value)}"
               for key, value in now.items() if before.get(key) != value]
    if changed:
        raise ResumeError(f"cannot resume {output_path}: " + "; ".join(changed) +
                          " (run again without --resume to start over)")


def _shown(value) -> str:
    """A setting as the command line spells it: 'block,review', 'none', a field mapping as k=v."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return " ".join(f"{k}={_shown(v)}" for k, v in value.items())
    return str(value)
