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
        pa.field("total_loss", pa.float64(), nullable=False),
        pa.field("capital_after", pa.float64(), nullable=False),
        pa.field("defaulted", pa.bool_(), nullable=False),
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


def paths_table(result: BlockResult, schema: pa.Schema) -> pa.Table:
    columns = [
        pa.array(result.paths, pa.int64()),
        pa.array(np.full(result.block.size, result.block.index, dtype=np.int32)),
        pa.array(result.weight, pa.float64()),
        pa.array(result.system_loss, pa.float64()),
        pa.array(result.n_defaults.astype("int32"), pa.int32()),
        *[pa.array(result.factors[:, j], pa.float64()) for j in range(result.factors.shape[1])],
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
    loss = result.institution_loss.reshape(-1)
    capital_after = (capital[None, :] - result.institution_loss).reshape(-1)
    which = np.tile(np.arange(n_institutions, dtype=np.int32), n)
    columns = [
        pa.array(result.paths.repeat(n_institutions), pa.int64()),
        pa.array(np.asarray(institution_ids, dtype=object)[which], pa.string()),
        pa.array(np.asarray(institution_types, dtype=object)[which], pa.string()),
        pa.array(loss, pa.float64()),
        pa.array(loss, pa.float64()),
        pa.array(capital_after, pa.float64()),
        pa.array(capital_after <= 0.0, pa.bool_()),
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def summary_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=schema)
