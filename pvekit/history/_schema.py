"""What each table of the history store holds, and the exact pandas <-> Arrow conversion.

Each kind's columns are the live frame's (``pvekit.frames.COLUMNS``) plus ``collected_at``.
The Arrow schema is fixed per kind (not inferred per file) so that every file of a kind has
the same types even when one snapshot has only nulls in a column, and a reader can
concatenate them without promotion surprises.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .. import frames
from .._errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

__all__ = ["KINDS", "SCHEMA_VERSION", "column_dtypes", "from_arrow", "to_arrow"]

# Version 1: the first layout (see docs/history.md). Version 2: a commit marker may commit
# several snapshots at once (Store.write_many); a version-1 reader would not see them. Bump
# it when a reader of the old version would misread the new files; adding a column does not
# need a bump (older files read back with that column null).
SCHEMA_VERSION = 2

KINDS: tuple[str, ...] = ("nodes", "guests", "storage", "summary", "findings", "status")

_FINDINGS: tuple[tuple[str, str], ...] = (
    ("severity", "severity"),  # ordered category critical > warning > info
    ("profile", "string"),
    ("category", "string"),
    ("object", "string"),
    ("message", "string"),
    ("metric", "float64"),
    ("unit", "string"),
    ("kind", "string"),  # what capacity.group_findings folds by ("no backup", ...)
)
_STATUS_EXTRA: tuple[tuple[str, str], ...] = (
    ("snapshot_id", "str"),
    ("nodes", "Int64"),
    ("guests", "Int64"),
    ("storage", "Int64"),
)

# Fields of the dicts inside list columns, in the order pvekit's parsers write them; "error"
# appears only on entries that did not parse.
_STRUCT_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "disks": (
        ("key", "str"),
        ("storage", "str"),
        ("volume", "str"),
        ("size", "int"),
        ("format", "str"),
        ("cache", "str"),
        ("iothread", "bool"),
        ("ssd", "bool"),
        ("discard", "str"),
        ("backup", "bool"),
        ("mountpoint", "str"),
        ("media", "str"),
        ("error", "str"),
    ),
    "networks": (
        ("key", "str"),
        ("model", "str"),
        ("mac", "str"),
        ("bridge", "str"),
        ("vlan", "int"),
        ("firewall", "bool"),
        ("rate", "float"),
        ("ip", "str"),
        ("gateway", "str"),
        ("name", "str"),
        ("error", "str"),
    ),
}
_STRING_LISTS = frozenset({"tags", "content"})
# A dict that lacks some fields of the fixed struct lists them here, so a read gives back
# the same keys (an entry without "error" must not come back with "error": None).
_ABSENT = "__absent__"
_TIME = "datetime64[ns, UTC]"


def column_dtypes(kind: str) -> dict[str, str]:
    """Column name -> documented dtype of one stored kind, ``collected_at`` last."""
    if kind not in KINDS:
        raise InvalidInputError(
            f"unknown history kind {kind!r}: expected one of {', '.join(KINDS)}"
        )
    if kind == "findings":
        cols = dict(_FINDINGS)
    elif kind == "status":
        cols = {c.name: c.dtype for c in frames.COLUMNS["group_status"]}
        cols.update(_STATUS_EXTRA)
    elif kind == "guests":
        cols = {c.name: c.dtype for c in frames._column_specs("guests", details=True)}
    else:
        cols = {c.name: c.dtype for c in frames.COLUMNS[kind]}
    cols["collected_at"] = "datetime64[ns, UTC]"
    return cols


def _arrow_type(pa: Any, name: str, dtype: str) -> Any:
    if dtype in ("category", "severity"):
        return pa.dictionary(pa.int32(), pa.string())
    if dtype == "object":
        if name in _STRUCT_FIELDS:
            scalar = {
                "str": pa.string(),
                "int": pa.int64(),
                "bool": pa.bool_(),
                "float": pa.float64(),
            }
            fields = [pa.field(f, scalar[t]) for f, t in _STRUCT_FIELDS[name]]
            fields.append(pa.field(_ABSENT, pa.list_(pa.string())))
            return pa.list_(pa.struct(fields))
        return pa.list_(pa.string())
    return {
        "str": pa.string(),
        "string": pa.string(),
        "Int64": pa.int64(),
        "float64": pa.float64(),
        "boolean": pa.bool_(),
        "datetime64[ns, UTC]": pa.timestamp("ns", tz="UTC"),
    }[dtype]


@functools.cache
def arrow_schema(kind: str) -> pa.Schema:
    """The fixed Arrow schema of one kind (built once: schemas are immutable)."""
    import pyarrow as pa

    return pa.schema(
        [pa.field(n, _arrow_type(pa, n, d)) for n, d in column_dtypes(kind).items()],
        metadata={b"pvekit.schema_version": str(SCHEMA_VERSION).encode()},
    )


def _with_absent(name: str, values: Iterable[Any]) -> list[Any]:
    fields = [f for f, _ in _STRUCT_FIELDS[name]]
    out: list[Any] = []
    for items in values:
        if not isinstance(items, list | tuple):
            out.append(None)
            continue
        converted = []
        for d in items:
            if not isinstance(d, Mapping):
                continue
            absent = [f for f in fields if f not in d]
            converted.append({**{f: d.get(f) for f in fields}, _ABSENT: absent or None})
        out.append(converted)
    return out


def _string_list(values: Iterable[Any]) -> list[Any]:
    return [
        [str(v) for v in items] if isinstance(items, list | tuple) else None for items in values
    ]


def _plain(pd: Any, dtype: Any, arrow_type: Any) -> bool:
    """The pandas dtype converts to ``arrow_type`` as is (no cast, no inference)."""
    import pyarrow as pa

    text = str(dtype)
    if pa.types.is_timestamp(arrow_type):
        return text == _TIME
    if pa.types.is_string(arrow_type):
        return isinstance(dtype, pd.StringDtype)
    if pa.types.is_boolean(arrow_type):
        return text == "boolean"
    if pa.types.is_integer(arrow_type):
        return text == "Int64"
    return text == "float64"


def to_arrow(
    kind: str, df: pd.DataFrame, *, encode: bool = True, skip: Iterable[str] = ()
) -> pa.Table:
    """The table of one kind as stored: every documented column (missing ones null).

    ``skip`` names columns left null whatever the frame has (the store stamps them itself).
    ``encode=False`` leaves the dictionary columns plain strings (schema
    :func:`plain_schema`): a table of several snapshots is cut into one table per snapshot
    first, and each is then encoded on its own by :func:`encode_dictionaries`, in order of
    appearance in that snapshot, as a table converted alone would be.
    """
    import pandas as pd
    import pyarrow as pa

    schema = arrow_schema(kind) if encode else plain_schema(kind)
    n = len(df)
    # One conversion per column, each straight from its pandas array: a frame of a few rows
    # costs its columns' conversions, not pandas' and pyarrow's per-call set-up (selecting
    # the plain columns into a new frame, Table.from_pandas' metadata) on top.
    dtypes = dict(zip(df.columns, df.dtypes, strict=True))
    for name in skip:
        dtypes.pop(name, None)
    arrays = []
    for field in schema:
        name = field.name
        dtype = dtypes.get(name)
        if dtype is None:
            arrays.append(pa.nulls(n, field.type))
            continue
        col = df[name]
        if name in _STRUCT_FIELDS:
            arrays.append(pa.array(_with_absent(name, col), type=field.type))
        elif pa.types.is_list(field.type):
            arrays.append(pa.array(_string_list(col), type=field.type))
        elif pa.types.is_dictionary(field.type) or name in _dictionary_names(kind):
            # Encoded in order of appearance, as always (not in the categories' order).
            if isinstance(dtype, pd.CategoricalDtype):
                text = pa.array(col, from_pandas=True).dictionary_decode().cast(pa.string())
            else:
                text = pa.array(
                    col if isinstance(dtype, pd.StringDtype) else col.astype("string"),
                    type=pa.string(),
                    from_pandas=True,
                )
            arrays.append(text.dictionary_encode().cast(field.type) if encode else text)
        elif _plain(pd, dtype, field.type):
            # The array itself (Arrow-backed, masked, datetime or numpy), not the Series:
            # pa.array's pandas checks cost more than converting a short column.
            values = col.to_numpy() if dtype == "float64" else col.array
            arrays.append(pa.array(values, type=field.type, from_pandas=True))
        elif pa.types.is_timestamp(field.type):
            times = pd.to_datetime(col, utc=True).astype(_TIME)
            arrays.append(pa.array(times, type=field.type))
        elif pa.types.is_string(field.type):
            text = col.astype("string")
            arrays.append(pa.array(text, type=field.type, from_pandas=True))
        elif pa.types.is_boolean(field.type):
            arrays.append(pa.array(col.astype("boolean"), type=field.type))
        elif pa.types.is_integer(field.type):
            arrays.append(pa.array(col.astype("Int64"), type=field.type))
        else:
            arrays.append(pa.array(col.astype("float64"), type=field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


@functools.cache
def _dictionary_names(kind: str) -> frozenset[str]:
    import pyarrow as pa

    return frozenset(f.name for f in arrow_schema(kind) if pa.types.is_dictionary(f.type))


@functools.cache
def plain_schema(kind: str) -> pa.Schema:
    """:func:`arrow_schema` with plain strings for its dictionary columns."""
    import pyarrow as pa

    schema = arrow_schema(kind)
    for i, f in enumerate(schema):
        if pa.types.is_dictionary(f.type):
            schema = schema.set(i, f.with_type(pa.string()))
    return schema


def encode_dictionaries(kind: str, table: pa.Table) -> pa.Table:
    """A :func:`plain_schema` table (or a slice of one) as stored: its dictionary columns
    encoded in order of appearance, exactly what :func:`to_arrow` gives for those rows."""
    import pyarrow as pa

    schema = arrow_schema(kind)
    columns = table.columns
    for name in _dictionary_names(kind):
        i = schema.get_field_index(name)
        text = columns[i].combine_chunks()
        columns[i] = text.dictionary_encode().cast(schema.field(i).type)
    return pa.Table.from_arrays(columns, schema=schema)


def _restore_dicts(values: Any) -> list[Any]:
    out: list[Any] = []
    for items in values:
        if items is None:
            out.append(None)
            continue
        restored = []
        for d in items:
            absent = d.pop(_ABSENT)
            if absent is not None:
                for f in absent:
                    d.pop(f, None)
            restored.append(d)
        out.append(restored)
    return out


def _severity_dtype(pd: Any) -> Any:
    from ..capacity import SEVERITIES

    return pd.CategoricalDtype(list(SEVERITIES), ordered=True)


def from_arrow(kind: str, table: pa.Table) -> pd.DataFrame:
    """A stored table back to the live frame's dtypes, values and column order."""
    import gc

    import pandas as pd
    import pyarrow as pa

    dtypes = column_dtypes(kind)
    mapper = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get
    # Millions of new lists and dicts would each trigger a cyclic-GC pass over all of them
    # (none can be garbage yet): off while they are built.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _from_arrow(pd, kind, table, dtypes, mapper)
    finally:
        if was_enabled:
            gc.enable()


def _from_arrow(pd: Any, kind: str, table: Any, dtypes: dict[str, str], mapper: Any) -> Any:
    df = table.to_pandas(types_mapper=mapper, split_blocks=True, self_destruct=True)
    for name in df.columns:
        dtype = dtypes.get(name)
        col = df[name]
        if dtype is None:
            continue
        if name in _STRUCT_FIELDS:
            df[name] = pd.Series(_restore_dicts(col), index=df.index, dtype="object")
        elif dtype == "object":
            df[name] = pd.Series(
                [None if v is None else list(v) for v in col], index=df.index, dtype="object"
            )
        elif dtype == "severity":
            df[name] = col.astype("string").astype(_severity_dtype(pd))
        elif dtype == "category":
            # Same categories as a live frame: the values present, sorted.
            if not isinstance(col.dtype, pd.CategoricalDtype):
                col = col.astype("category")
            col = col.cat.remove_unused_categories()
            cats = col.cat.categories.astype(str)
            col = col.cat.rename_categories(cats) if not cats.equals(col.cat.categories) else col
            df[name] = col.cat.reorder_categories(sorted(col.cat.categories))
        elif dtype == "string":
            df[name] = col.astype("string")
        elif dtype == "str":
            df[name] = col.astype("str") if col.dtype != "str" else col
        elif str(col.dtype) != dtype:
            df[name] = col.astype(dtype)
    return df
