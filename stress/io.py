"""Arrow schemas and crash-safe Parquet and JSON writing.

One explicit schema per table, all here. Every file is written under a temporary name in its
final folder, its footer is read back and checked (row count, schema), and only then is it
renamed into place: a crash leaves a ``.tmp`` file, never a half-written file that looks
valid. Provenance goes into each Parquet file's key-value metadata under ``ai_stress``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stress.engine import BlockResult

COMPRESSION = "zstd"
METADATA_KEY = b"ai_stress"
FACTOR_PREFIX = "factor_"


def paths_schema(factor_names: Sequence[str]) -> pa.Schema:
    """``paths/``: one row per path."""
    return pa.schema(
        [
            pa.field("path", pa.int64(), nullable=False),
            pa.field("block", pa.int32(), nullable=False),
            pa.field("weight", pa.float64(), nullable=False),
            pa.field("system_loss", pa.float64(), nullable=False),
            pa.field("n_defaults", pa.int32(), nullable=False),
            *[pa.field(FACTOR_PREFIX + f, pa.float64(), nullable=False) for f in factor_names],
        ]
    )


INSTITUTIONS_SCHEMA = pa.schema(
    [
        pa.field("path", pa.int64(), nullable=False),
        pa.field("institution", pa.string(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("first_round_loss", pa.float64(), nullable=False),
        pa.field("contagion_loss", pa.float64(), nullable=False),
        pa.field("fire_sale_loss", pa.float64(), nullable=False),
        pa.field("total_loss", pa.float64(), nullable=False),
        pa.field("capital_after", pa.float64(), nullable=False),
        pa.field("defaulted", pa.bool_(), nullable=False),
        pa.field("distressed", pa.bool_(), nullable=False),
    ]
)

CLASSES_SCHEMA = pa.schema(
    [
        pa.field("path", pa.int64(), nullable=False),
        pa.field("class", pa.string(), nullable=False),
        pa.field("loss", pa.float64(), nullable=False),
    ]
)

VEHICLES_SCHEMA = pa.schema(
    [
        pa.field("path", pa.int64(), nullable=False),
        pa.field("vehicle", pa.string(), nullable=False),
        pa.field("tranche", pa.string(), nullable=False),
        pa.field("lessee_defaulted", pa.bool_(), nullable=False),
        pa.field("non_renewed", pa.bool_(), nullable=False),
        pa.field("guarantee_paid", pa.float64(), nullable=False),
        pa.field("asset_loss", pa.float64(), nullable=False),
        pa.field("tranche_loss", pa.float64(), nullable=False),
    ]
)

SUMMARY_SCHEMA = pa.schema(
    [
        pa.field("scope", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("level", pa.float64(), nullable=True),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("std_error", pa.float64(), nullable=True),
    ]
)


def with_provenance(schema: pa.Schema, provenance: Mapping[str, Any]) -> pa.Schema:
    return schema.with_metadata({METADATA_KEY: json.dumps(provenance, sort_keys=True).encode()})


def read_provenance(path: Path) -> dict[str, Any]:
    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata[METADATA_KEY]) if METADATA_KEY in metadata else {}


def part_name(block: int) -> str:
    return f"part-{block:06d}.parquet"


def temporary_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp")


def write_parquet(table: pa.Table, final: Path) -> None:
    """Write ``table`` to ``final`` atomically, after checking what landed on disk."""
    temporary = temporary_name(final)
    pq.write_table(table, temporary, compression=COMPRESSION)
    written = pq.read_metadata(temporary)
    if written.num_rows != table.num_rows or not written.schema.to_arrow_schema().equals(
        table.schema
    ):
        temporary.unlink(missing_ok=True)
        raise OSError(f"{final}: the file read back does not match what was written")
    os.replace(temporary, final)


def write_text(text: str, final: Path) -> None:
    """Write a text file atomically."""
    temporary = temporary_name(final)
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, final)


def write_json(data: Mapping[str, Any], final: Path) -> None:
    write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", final)


# Arrays are built from their buffers: pa.array() probes for pandas on every call and
# importing pandas, when installed, costs most of a second of start-up.


def _numeric(values: np.ndarray, kind: pa.DataType) -> pa.Array:
    data = np.ascontiguousarray(values, dtype=kind.to_pandas_dtype())
    return pa.Array.from_buffers(kind, len(data), [None, pa.py_buffer(data)])


def _booleans(values: np.ndarray) -> pa.Array:
    bits = np.packbits(np.asarray(values, dtype=np.bool_), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def _strings(values: Sequence[str]) -> pa.Array:
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = b"".join(encoded)
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _repeat_strings(labels: Sequence[str], which: np.ndarray) -> pa.Array:
    """``labels[which]`` as a string array, decoded once per label, not once per row."""
    dictionary = pa.DictionaryArray.from_arrays(_numeric(which, pa.int32()), _strings(labels))
    return dictionary.cast(pa.string())


def _nullable_floats(values: Sequence[float | None]) -> pa.Array:
    valid = np.array([v is not None for v in values], dtype=np.bool_)
    data = np.array([0.0 if v is None else v for v in values], dtype=np.float64)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.float64(), len(data), [bitmap, pa.py_buffer(data)], null_count=int((~valid).sum())
    )


def paths_table(result: BlockResult, schema: pa.Schema) -> pa.Table:
    n = result.block.size
    columns = [
        _numeric(result.paths, pa.int64()),
        _numeric(np.full(n, result.block.index), pa.int32()),
        _numeric(result.weight, pa.float64()),
        _numeric(result.system_loss, pa.float64()),
        _numeric(result.n_defaults, pa.int32()),
        *[_numeric(result.factors[:, j], pa.float64()) for j in range(result.factors.shape[1])],
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def institutions_table(
    result: BlockResult,
    institution_ids: Sequence[str],
    institution_types: Sequence[str],
    capital: np.ndarray,
    schema: pa.Schema,
) -> pa.Table:
    """Long format, path-major: the rows of path p are its institutions in scenario order."""
    n, n_institutions = result.institution_loss.shape
    total = result.total_loss
    which = np.tile(np.arange(n_institutions, dtype=np.int32), n)
    columns = [
        _numeric(result.paths.repeat(n_institutions), pa.int64()),
        _repeat_strings(institution_ids, which),
        _repeat_strings(institution_types, which),
        _numeric(result.institution_loss.reshape(-1), pa.float64()),
        _numeric(result.contagion_loss.reshape(-1), pa.float64()),
        _numeric(result.fire_sale_loss.reshape(-1), pa.float64()),
        _numeric(total.reshape(-1), pa.float64()),
        _numeric((capital[None, :] - total).reshape(-1), pa.float64()),
        _booleans(result.defaulted.reshape(-1)),
        _booleans(result.distressed.reshape(-1)),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def classes_table(result: BlockResult, class_names: Sequence[str], schema: pa.Schema) -> pa.Table:
    """Long format, path-major: the system-wide loss of each exposure class on each path."""
    n, n_classes = result.class_loss.shape
    which = np.tile(np.arange(n_classes, dtype=np.int32), n)
    columns = [
        _numeric(result.paths.repeat(n_classes), pa.int64()),
        _repeat_strings(class_names, which),
        _numeric(result.class_loss.reshape(-1), pa.float64()),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def vehicles_table(
    result: BlockResult,
    vehicle_ids: Sequence[str],
    tranche_indptr: np.ndarray,
    tranche_ids: Sequence[str],
    schema: pa.Schema,
) -> pa.Table:
    """Long format, path-major: one row per (path, tranche), tranches in scenario order, with
    the vehicle's own columns (events, guarantee, asset loss) repeated on its tranche rows."""
    n, n_tranches = result.tranche_loss.shape
    owner = np.repeat(np.arange(len(vehicle_ids), dtype=np.int32), np.diff(tranche_indptr))
    names = [t.partition(".")[2] for t in tranche_ids]
    columns = [
        _numeric(result.paths.repeat(n_tranches), pa.int64()),
        _repeat_strings(vehicle_ids, np.tile(owner, n)),
        _repeat_strings(names, np.tile(np.arange(n_tranches, dtype=np.int32), n)),
        _booleans(result.lessee_defaulted[:, owner].reshape(-1)),
        _booleans(result.non_renewed[:, owner].reshape(-1)),
        _numeric(result.guarantee_paid[:, owner].reshape(-1), pa.float64()),
        _numeric(result.vehicle_loss[:, owner].reshape(-1), pa.float64()),
        _numeric(result.tranche_loss.reshape(-1), pa.float64()),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def read_column(path: Path, column: str) -> np.ndarray:
    """One float column of a part file, as written (for the metrics' second pass)."""
    file = pq.ParquetFile(path)
    chunks = file.reader.read_column(file.schema_arrow.get_field_index(column)).chunks
    # Views of the Arrow buffers: Table and Array.to_numpy() probe for pandas and so import it
    # when it is installed, most of a second on a short run. Columns are non-nullable floats.
    return np.concatenate(
        [
            np.frombuffer(c.buffers()[1], dtype=np.float64, count=len(c), offset=8 * c.offset)
            for c in chunks
        ]
    )


def read_table_rows(path: Path) -> list[dict[str, Any]]:
    """A small Parquet table (a summary, a points table) as a list of row dicts."""
    return pq.read_table(path).to_pylist()


def summary_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    columns = [
        _strings([r["scope"] for r in rows]),
        _strings([r["name"] for r in rows]),
        _strings([r["metric"] for r in rows]),
        _nullable_floats([r["level"] for r in rows]),
        _numeric(np.array([r["value"] for r in rows], dtype=np.float64), pa.float64()),
        _nullable_floats([r["std_error"] for r in rows]),
    ]
    return pa.Table.from_arrays(columns, schema=schema)
