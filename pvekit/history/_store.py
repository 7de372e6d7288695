"""The snapshot store: Parquet files per kind and date, made visible by a commit marker.

Layout under ``location`` (a local folder or any fsspec URL)::

    _pvekit_history.json                      format name and schema version of the store
    _commits/<snapshot_id>.json               one marker per committed snapshot (written last)
    <kind>/date=YYYY-MM-DD/<snapshot_id>.parquet

A snapshot is written data files first, marker last; readers list ``_commits/`` and read only
the files of committed snapshots, so a collector that dies half-way leaves files nobody reads
(:meth:`Store.prune` removes them later). Object stores have no rename: every file is one PUT
(complete or absent), so the same protocol holds on S3 as on a local disk, where each file is
written to a temporary name and renamed into place. The snapshot id is the collection time
and the profiles collected, so writing the same snapshot again replaces the same files and
the same marker: it is stored once.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .. import __version__
from .._errors import HistoryError, InvalidInputError, StoreFormatError
from . import _schema
from ._schema import KINDS, SCHEMA_VERSION

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

__all__ = ["HistoryError", "Store", "StoreFormatError"]

log = logging.getLogger("pvekit.history")

_FORMAT = "pvekit-history"
_ROOT_FILE = "_pvekit_history.json"
_COMMITS = "_commits"
_SID = re.compile(r"^(\d{8}T\d{6}Z)-([0-9a-f]{8})$")
# Columns a read may ask for that are computed from stored ones, not stored themselves.
DERIVED: dict[str, tuple[str, ...]] = {"disk_provisioned": ("disks",)}


def _require_pyarrow() -> Any:
    try:
        import fsspec
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise HistoryError(
            f"pvekit.history needs pyarrow and fsspec ({exc.name} is missing): "
            "pip install 'pvekit[history]'"
        ) from None
    return fsspec


def snapshot_id(collected_at: pd.Timestamp, profiles: Iterable[str]) -> str:
    """``20261203T145500Z-1a2b3c4d``: the time (to the second) and a hash of the profiles."""
    digest = hashlib.sha256("\n".join(sorted(set(profiles))).encode()).hexdigest()[:8]
    return f"{collected_at.strftime('%Y%m%dT%H%M%S')}Z-{digest}"


def _sid_time(sid: str) -> pd.Timestamp:
    import pandas as pd

    return pd.Timestamp(sid[:15] + "+00:00").tz_convert("UTC")


def _utc(when: Any, what: str) -> pd.Timestamp:
    import pandas as pd

    try:
        ts = pd.Timestamp(when)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be a time, got {when!r} ({exc})") from None
    if ts is pd.NaT:
        raise InvalidInputError(f"{what} must be a time, got {when!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class Store:
    """A history of inventory snapshots in Parquet at ``location``.

    ``location`` is a local folder (created on the first write) or an fsspec URL such as
    ``s3://bucket/pvekit``; ``storage_options`` go to fsspec unchanged (credentials,
    ``endpoint_url``...) and are never shown in a repr, log line or error.
    """

    def __init__(self, location: str | Any, **storage_options: Any) -> None:
        fsspec = _require_pyarrow()
        import os

        text = os.fspath(location) if not isinstance(location, str) else location
        if not text:
            raise InvalidInputError("history store location must not be empty")
        # user:secret@ in a URL must not reach a repr, log line or error message
        self.location = re.sub(r"^([a-zA-Z][\w+.-]*://)[^/@]*@", r"\1***@", text)
        # kept private for a demo-build worker process to open the same store; never shown
        self._url = text
        self._options = dict(storage_options)
        fs, path = fsspec.core.url_to_fs(text, **storage_options)
        self._fs = fs
        self._root = path.rstrip("/") or "/"
        self._local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        self._checked = False

    def __repr__(self) -> str:
        return f"<pvekit.history.Store {self.location!r}>"

    # -- paths and small files ----------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return posixpath.join(self._root, *parts)

    def _data_path(self, kind: str, sid: str) -> str:
        t = _sid_time(sid)
        return self._path(kind, f"date={t:%Y-%m-%d}", f"{sid}.parquet")

    def _put(self, path: str, data: bytes) -> None:
        """Write one file so that it is either complete or absent."""
        if self._local:
            self._fs.makedirs(posixpath.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex}"
            with self._fs.open(tmp, "wb") as fh:
                fh.write(data)
            self._fs.mv(tmp, path)  # a rename on one file system: atomic
        else:
            self._fs.pipe_file(path, data)  # one PUT: the object appears whole or not at all

    def _check_format(self, *, create: bool) -> None:
        if self._checked:
            return
        root = self._path(_ROOT_FILE)
        try:
            raw = self._fs.cat_file(root)
        except FileNotFoundError:
            if not create:
                return  # an empty or missing store reads as empty
            info = {"format": _FORMAT, "schema_version": SCHEMA_VERSION, "created_by": __version__}
            self._put(root, json.dumps(info, indent=1).encode())
            self._checked = True
            return
        try:
            info = json.loads(raw)
        except ValueError:
            info = {}
        if not isinstance(info, dict) or info.get("format") != _FORMAT:
            raise StoreFormatError(f"{self.location} is not a pvekit history store ({_ROOT_FILE})")
        version = info.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise StoreFormatError(
                f"history store {self.location} has schema version {version!r}, newer than "
                f"this pvekit ({__version__}) reads (up to {SCHEMA_VERSION}): upgrade pvekit"
            )
        self._checked = True

    # -- writing ------------------------------------------------------------------------------

    def write(
        self,
        frames: Mapping[str, pd.DataFrame],
        *,
        collected_at: Any,
        profiles: Sequence[str] | None = None,
    ) -> str:
        """Store one snapshot from frames already read; returns its snapshot id.

        ``frames`` maps kinds (``nodes``, ``guests``, ``storage``, ``summary``, ``findings``,
        ``status``) to frames; a missing kind is stored empty. ``collected_at`` and
        ``profile`` stamp every row. Writing the same snapshot again (same time to the
        second, same profiles) replaces it: it is stored once.
        """
        import pandas as pd

        unknown = set(frames) - set(KINDS)
        if unknown:
            raise InvalidInputError(
                f"unknown history kind(s) {', '.join(sorted(unknown))}: expected {', '.join(KINDS)}"
            )
        when = _utc(collected_at, "collected_at").floor("s")
        if profiles is None:
            seen: set[str] = set()
            for df in frames.values():
                if "profile" in df.columns:
                    seen.update(str(p) for p in df["profile"].dropna().unique())
            profiles = sorted(seen)
        sid = snapshot_id(when, profiles)
        self._check_format(create=True)
        marker = self._path(_COMMITS, f"{sid}.json")
        rows: dict[str, int] = {}
        files: dict[str, str] = {}
        for kind in KINDS:
            given = frames.get(kind)
            df = pd.DataFrame() if given is None else given.copy()
            df["collected_at"] = when
            if kind == "status":
                df["snapshot_id"] = sid
            table = _schema.to_arrow(kind, df)
            path = self._data_path(kind, sid)
            self._put(path, _parquet_bytes(table))
            self._written(kind, path)
            rows[kind] = table.num_rows
            files[kind] = posixpath.relpath(path, self._root)
        commit = {
            "snapshot_id": sid,
            "collected_at": when.isoformat(),
            "schema_version": SCHEMA_VERSION,
            "pvekit_version": __version__,
            "profiles": list(profiles),
            "rows": rows,
            "files": files,
        }
        self._put(marker, json.dumps(commit, indent=1).encode())
        return sid

    def _written(self, kind: str, path: str) -> None:
        """Hook between data files (tests inject a crash here)."""

    def collect(
        self,
        source: Any,
        *,
        details: bool = True,
        analyse: bool = True,
        collected_at: Any = None,
        fresh: bool = True,
    ) -> str:
        """Read one snapshot of a Cluster or Group and store it; returns the snapshot id.

        A cluster of a Group that does not answer is recorded in the ``status`` table (state
        ``failed`` and its error) and the others are stored. ``details`` reads every guest's
        config (disks, networks, configured memory); ``analyse`` stores the capacity
        findings of the snapshot. ``collected_at`` (default: now) stamps the rows;
        ``fresh=False`` lets the client answer from its cache.
        """
        from ._collect import read_snapshot

        snap = read_snapshot(
            source, details=details, analyse=analyse, fresh=fresh, collected_at=collected_at
        )
        return self.write(snap.frames, collected_at=snap.collected_at, profiles=snap.profiles)

    # -- reading ------------------------------------------------------------------------------

    def _committed(self) -> list[str]:
        self._check_format(create=False)
        commits = self._path(_COMMITS)
        self._fs.invalidate_cache(commits)  # s3fs keeps listings: another writer may have added
        try:
            names = self._fs.ls(commits, detail=False)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            base = posixpath.basename(str(name).rstrip("/"))
            if base.endswith(".json") and _SID.match(base[:-5]):
                out.append(base[:-5])
        return sorted(out)

    def _select(self, since: Any, until: Any) -> list[str]:
        sids = self._committed()
        if since is not None:
            lo = _utc(since, "since")
            sids = [s for s in sids if _sid_time(s) >= lo]
        if until is not None:
            hi = _utc(until, "until")
            sids = [s for s in sids if _sid_time(s) <= hi]
        return sids

    def read(
        self,
        kind: str,
        since: Any = None,
        until: Any = None,
        profiles: Iterable[str] | str | None = None,
        *,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Every committed row of ``kind`` collected between ``since`` and ``until``
        (inclusive), as a frame with the live frame's columns and dtypes plus
        ``collected_at``, sorted by time.

        ``profiles`` keeps those clusters only; ``columns`` reads only those columns (much
        faster on a long history: lists of dicts are the slow part) and may name
        ``disk_provisioned`` (guests: the sum of the disk sizes on a storage, computed
        from ``disks`` without building the dicts).
        """
        import pyarrow as pa

        dtypes = _schema.column_dtypes(kind)
        if isinstance(profiles, str):
            profiles = [profiles]
        wanted = list(columns) if columns is not None else [c for c in dtypes]
        derivable = DERIVED if kind == "guests" else {}
        bad = [c for c in wanted if c not in dtypes and c not in derivable]
        if bad:
            raise InvalidInputError(
                f"{kind} history has no column(s) {', '.join(bad)}; it has {', '.join(dtypes)}"
            )
        derived = [c for c in wanted if c in derivable]
        stored = [c for c in wanted if c in dtypes]
        needed = list(dict.fromkeys([*stored, *(s for d in derived for s in DERIVED[d])]))
        if profiles is not None and "profile" in dtypes and "profile" not in needed:
            needed.append("profile")
        sids = self._select(since, until)
        schema = _schema.arrow_schema(kind)
        if not sids:
            table = schema.empty_table().select(needed)
        else:
            paths = [self._data_path(kind, s) for s in sids]
            keep = sorted(set(profiles)) if profiles is not None else None
            with ThreadPoolExecutor(max_workers=min(8, len(paths))) as pool:
                tables = list(pool.map(lambda p: self._read_file(p, schema, needed, keep), paths))
            table = pa.concat_tables(tables)
        for name in derived:
            table = table.append_column(name, _disk_provisioned(table.column("disks")))
        df = _schema.from_arrow(kind, table.select(wanted))
        return df

    def _read_file(
        self, path: str, schema: pa.Schema, columns: list[str], profiles: list[str] | None
    ) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        with self._fs.open(path, "rb") as fh:
            pf = pq.ParquetFile(fh)
            present = set(pf.schema_arrow.names)
            table = pf.read(columns=[c for c in columns if c in present])
        # An older file may lack a column added since: it reads back null.
        for name in columns:
            if name not in present:
                field = schema.field(name)
                table = table.append_column(field, pa.nulls(table.num_rows, field.type))
        table = table.select(columns)
        if profiles is not None:
            table = table.filter(pc.is_in(table.column("profile"), pa.array(profiles)))
        return table

    def snapshots(self) -> pd.DataFrame:
        """One row per committed snapshot, oldest first: snapshot_id, collected_at, profiles
        (list), clusters_ok, clusters_failed, nodes, guests, storage (row counts; null when
        the snapshot has no status rows, e.g. one written by :meth:`write` without them)."""
        import pandas as pd

        sids = self._committed()
        out = pd.DataFrame(
            {
                "snapshot_id": pd.Series(sids, dtype="str"),
                "collected_at": pd.Series(
                    [_sid_time(s) for s in sids], dtype="datetime64[ns, UTC]"
                ),
            }
        )
        counts = ["clusters_ok", "clusters_failed", "nodes", "guests", "storage"]
        st = self.read("status") if sids else pd.DataFrame()
        if len(st):
            ok = st["state"].astype("string") == "connected"
            st = st.assign(_ok=ok.astype(int), _failed=(~ok).astype(int))
            agg = (
                st.groupby("snapshot_id", sort=False, observed=True)
                .agg(
                    profiles=("profile", lambda s: sorted(str(p) for p in s)),
                    clusters_ok=("_ok", "sum"),
                    clusters_failed=("_failed", "sum"),
                    nodes=("nodes", "sum"),
                    guests=("guests", "sum"),
                    storage=("storage", "sum"),
                )
                .reset_index()
            )
            agg["snapshot_id"] = agg["snapshot_id"].astype("str")
            out = out.merge(agg, on="snapshot_id", how="left")
        for c in counts:
            out[c] = out[c].astype("Int64") if c in out else pd.Series(pd.NA, out.index, "Int64")
        if "profiles" not in out:
            out["profiles"] = pd.Series([None] * len(out), dtype="object")
        missing = out["profiles"].isna()
        if missing.any():  # no status rows: the commit marker names the profiles
            out.loc[missing, "profiles"] = pd.Series(
                [self._marker(s).get("profiles", []) for s in out.loc[missing, "snapshot_id"]],
                index=out.index[missing],
                dtype="object",
            )
        return out[["snapshot_id", "collected_at", "profiles", *counts]]

    def _marker(self, sid: str) -> dict[str, Any]:
        info = json.loads(self._fs.cat_file(self._path(_COMMITS, f"{sid}.json")))
        return info if isinstance(info, dict) else {}

    def at(self, when: Any, kinds: Iterable[str] = KINDS) -> dict[str, pd.DataFrame]:
        """The frames as they were at ``when``: the last snapshot collected at or before it.

        Returns ``{kind: frame}``; raises :class:`HistoryError` when nothing was collected
        by then.
        """
        t = _utc(when, "when")
        sids = [s for s in self._committed() if _sid_time(s) <= t]
        if not sids:
            raise HistoryError(f"history store {self.location} has no snapshot at or before {t}")
        # Several collectors (different profile sets) may have committed at that same second.
        last_time = _sid_time(sids[-1])
        return {k: self.read(k, since=last_time, until=last_time) for k in kinds}

    # -- retention ----------------------------------------------------------------------------

    def prune(
        self, keep: Any = None, *, keep_last: int | None = None, orphan_grace: float = 3600.0
    ) -> list[str]:
        """Delete old snapshots; returns the ids deleted.

        ``keep`` is how long to keep (a ``pd.Timedelta``, ``"90D"``, or days as a number),
        counted back from the newest snapshot; ``keep_last`` keeps that many snapshots.
        The marker goes first, so a reader never sees a snapshot with missing files. Files of
        snapshots that were never committed (a collector that died) are removed too once
        they are ``orphan_grace`` seconds old (younger ones may belong to a collector that is
        still writing).
        """
        import pandas as pd

        if keep is None and keep_last is None:
            raise InvalidInputError("prune() needs keep= (a duration) or keep_last= (a count)")
        sids = self._committed()
        drop: set[str] = set()
        if keep is not None and sids:
            try:
                span = (
                    pd.Timedelta(days=keep) if isinstance(keep, int | float) else pd.Timedelta(keep)
                )
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"keep must be a duration, got {keep!r} ({exc})") from None
            if span < pd.Timedelta(0):
                raise InvalidInputError(f"keep must not be negative, got {keep!r}")
            newest = _sid_time(sids[-1])
            drop.update(s for s in sids if _sid_time(s) < newest - span)
        if keep_last is not None:
            if not isinstance(keep_last, int) or keep_last < 0:
                raise InvalidInputError(f"keep_last must be a count >= 0, got {keep_last!r}")
            drop.update(sids[: max(0, len(sids) - keep_last)])
        for sid in sorted(drop):
            self._fs.rm_file(self._path(_COMMITS, f"{sid}.json"))
            for kind in KINDS:
                path = self._data_path(kind, sid)
                if self._fs.exists(path):
                    self._fs.rm_file(path)
        self._remove_orphans(set(sids) - drop, orphan_grace)
        if drop:
            log.info("pruned %d snapshot(s) from %s", len(drop), self.location)
        return sorted(drop)

    def _remove_orphans(self, committed: set[str], grace: float) -> None:
        import datetime as dt

        now = dt.datetime.now(dt.UTC)
        for kind in KINDS:
            try:
                found = self._fs.find(self._path(kind))
            except FileNotFoundError:
                continue
            for path in found:
                base = posixpath.basename(str(path))
                sid = base.split(".parquet", 1)[0]
                if sid in committed or not (".tmp-" in base or _SID.match(sid)):
                    continue
                try:
                    modified = self._fs.modified(path)
                except (NotImplementedError, FileNotFoundError):
                    continue
                if modified.tzinfo is None:
                    modified = modified.replace(tzinfo=dt.UTC)
                if (now - modified).total_seconds() >= grace:
                    self._fs.rm_file(path)

    def files(self, kind: str) -> list[str]:
        """URLs of the committed Parquet files of ``kind`` (for DuckDB, Spark, Trino...)."""
        _schema.column_dtypes(kind)
        return [self._fs.unstrip_protocol(self._data_path(kind, s)) for s in self._committed()]


def _parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _disk_provisioned(disks: Any) -> Any:
    """Per row: sum of disk sizes on a storage (CD-ROMs, bind mounts: no storage or size)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    disks = disks.combine_chunks() if isinstance(disks, pa.ChunkedArray) else disks
    n = len(disks)
    flat = pc.list_flatten(disks)
    parents = pc.list_parent_indices(disks)
    size = pc.struct_field(flat, "size")
    storage = pc.struct_field(flat, "storage")
    ok = pc.and_kleene(pc.is_valid(storage), pc.greater(pc.fill_null(size, 0), 0))
    ok = pc.fill_null(ok, False)
    import numpy as np

    sums = np.bincount(
        parents.filter(ok).to_numpy(zero_copy_only=False),
        weights=size.filter(ok).to_numpy(zero_copy_only=False).astype("float64"),
        minlength=n,
    )
    out = pa.array(sums.astype("int64"))
    # no disk details at all: unknown, not zero
    return pc.if_else(pc.is_null(disks), pa.nulls(n, pa.int64()), out)
