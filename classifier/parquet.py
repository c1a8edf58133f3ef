"""Parquet for batch scoring, through pyarrow: the optional `parquet` extra.

pyarrow is imported only when a Parquet file is used, so the core install never needs it, and
asking for Parquet without it is one clear error naming the extra.

Output columns follow the output contract (`Scored.to_dict`): scores as a struct, highlights
and reasons as lists of structs. `id` is a string column, because a JSONL export may mix
integer and string ids and a Parquet column has one type.
"""
from __future__ import annotations

from typing import IO, Iterator

from .dataset import BadRow, FieldMap, check_columns
from .errors import InvalidPost, MissingExtra
from .types import LABELS, Post


def require_pyarrow():
    """pyarrow and pyarrow.parquet, or MissingExtra naming the extra to install."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingExtra.of("Parquet input or output", "parquet", "pyarrow") from None
    return pyarrow, pyarrow.parquet


def output_schema():
    """The Arrow schema of scored output."""
    pa, _ = require_pyarrow()
    return pa.schema([
        ("id", pa.string()),
        ("label", pa.string()),
        ("decision", pa.string()),
        ("scores", pa.struct([(label, pa.float64()) for label in LABELS])),
        ("highlights", pa.list_(pa.struct([("field", pa.string()), ("start", pa.int64()), ("end", pa.int64()),
                                           ("score", pa.float64())]))),
        ("reasons", pa.list_(pa.struct([("feature", pa.string()), ("weight", pa.float64())]))),
        ("model_version", pa.string()),
        ("truncated", pa.bool_()),
    ])


def table_of(records: list[dict]):
    """An Arrow table of output-contract dicts (ids as strings)."""
    pa, _ = require_pyarrow()
    return pa.Table.from_pylist([{**r, "id": str(r["id"])} for r in records], schema=output_schema())


def open_file(source: str | IO[bytes]):
    """A pyarrow ParquetFile for a path or a seekable binary file object."""
    _, pq = require_pyarrow()
    return pq.ParquetFile(source)


def mapped_columns(pf, fields: FieldMap, *, path: str) -> list[str]:
    """The columns a ParquetFile's posts are read from, after checking its schema (the footer
    only) against the field mapping (ColumnMappingError naming the columns found)."""
    names = pf.schema_arrow.names
    check_columns(names, fields, path=path)
    return list(dict.fromkeys([fields.id, fields.title, fields.body]
                              + ([fields.category] if fields.category in names else [])))


def batches(source: str | IO[bytes], fields: FieldMap, *, path: str, batch_size: int,
            skip: int = 0) -> Iterator[tuple[int, object]]:
    """(1-based number of the first row, record batch) over the mapped columns of a Parquet file.

    The columns are checked against the field mapping before anything is read. `skip` rows are
    left out; whole row groups before them are not even read.
    """
    pf = open_file(source)
    columns = mapped_columns(pf, fields, path=path)
    # Leave out the leading row groups that lie wholly before `skip`; every group from the first
    # one reaching past it is read (a later, smaller group once looked skippable on its own, and
    # the resumed output lost it and repeated the rows before the offset).
    first, start = 0, 0
    while start < pf.metadata.num_row_groups and first + pf.metadata.row_group(start).num_rows <= skip:
        first += pf.metadata.row_group(start).num_rows
        start += 1
    groups = list(range(start, pf.metadata.num_row_groups))
    if not groups:
        return
    row = first
    for batch in pf.iter_batches(batch_size=batch_size, columns=columns, row_groups=groups):
        if row + batch.num_rows <= skip:
            row += batch.num_rows
            continue
        if row < skip:
            batch = batch.slice(skip - row)
            row = skip
        yield row + 1, batch
        row += batch.num_rows


def posts_of_batch(first_row: int, batch, fields: FieldMap) -> list[Post | BadRow]:
    """Posts of one record batch; a row that is not a valid post becomes a BadRow (its row number).

    A null title counts as empty (columnar exports store a reply's missing title as null).
    """
    out: list[Post | BadRow] = []
    for n, row in enumerate(batch.to_pylist(), first_row):
        record = {"id": row.get(fields.id), "title": row.get(fields.title) or "", "body": row.get(fields.body),
                  "category": row.get(fields.category) or None}
        try:
            out.append(Post.from_dict(record))
        except InvalidPost as exc:
            out.append(BadRow(n, str(exc)))
    return out


def num_rows(source: str | IO[bytes]) -> int:
    """Rows in a Parquet file, from its footer."""
    return open_file(source).metadata.num_rows
