"""The snapshot store: Parquet files per kind and date, made visible by a commit marker.

Layout under ``location`` (a local folder or any fsspec URL)::

    _pvekit_history.json                      format name and schema version of the store
    _commits/<snapshot_id>.json               one marker per committed snapshot (written last)
    _commits/batch-<snapshot_id>-<hash>.json  one marker for a batch (Store.write_many)
    <kind>/date=YYYY-MM-DD/<snapshot_id>.parquet

A snapshot is written data files first, marker last; readers list ``_commits/`` and read only
the files of committed snapshots, so a collector that dies half-way leaves files nobody reads
(:meth:`Store.prune` removes them later). Object stores have no rename: every file is one PUT
(complete or absent), so the same protocol holds on S3 as on a local disk, where each file is
written to a temporary name and renamed into place. The snapshot id is the collection time
and the profiles collected, so writing the same snapshot again replaces the same files and
the same marker: it is stored once. A batch of snapshots (:meth:`Store.write_many`) has one
marker listing them all, named after them, so the batch appears whole or not at all, and a
snapshot committed both alone and in a batch (a retry) is still one snapshot.
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
# A marker committing several snapshots (write_many): the last one's time, a hash of all.
_BATCH = re.compile(r"^batch-(\d{8}T\d{6}Z)-([0-9a-f]{8})-([0-9a-f]{8})$")
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


def _batch_name(sids: Iterable[str]) -> str:
    """``batch-<newest snapshot id>-<hash of them all>``: the same batch, the same marker."""
    ordered = sorted(set(sids))
    digest = hashlib.sha256("\n".join(ordered).encode()).hexdigest()[:8]
    return f"batch-{ordered[-1]}-{digest}"


def _same_columns(dfs: Sequence[pd.DataFrame]) -> bool:
    """One conversion fits them all: the same columns and dtypes (categories may differ:
    pandas' concat makes such a column object, which to_arrow turns into the same strings)."""
    import pandas as pd

    columns = dfs[0].columns
    first = dfs[0].dtypes.tolist()
    for df in dfs[1:]:
        if not df.columns.equals(columns):
            return False
        for a, b in zip(first, df.dtypes.tolist(), strict=True):
            # the same dtype object, mostly: an equality test of extension dtypes costs more
            if a is b or (type(a) is type(b) and isinstance(a, pd.CategoricalDtype)):
                continue
            if a != b:
                return False
    return True


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
        self._version = SCHEMA_VERSION  # the store's, once read by _check_format
        # batch marker name -> the snapshot ids it commits (a marker never changes)
        self._batches: dict[str, list[str]] = {}

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
            self._version = SCHEMA_VERSION
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
        self._version = version
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
        return self.write_many([(frames, collected_at, profiles)])[0]

    def write_many(
        self,
        snapshots: Iterable[
            tuple[Mapping[str, pd.DataFrame | Sequence[pd.DataFrame]], Any, Sequence[str] | None]
        ],
    ) -> list[str]:
        """Store several snapshots in one commit; returns their ids, in the order given.

        Each item is ``(frames, collected_at, profiles)`` as :meth:`write` takes them; a
        kind may also map to a list of frames (one per cluster, say), stored as their
        concatenation. The snapshots become visible together or not at all (one commit
        marker for all of them), each is stored exactly as :meth:`write` would store it
        (one file per kind and snapshot), and writing one again, alone or in a batch, still
        stores it once. One Arrow conversion per kind for the whole batch, not one per
        snapshot: a few rows cost that conversion's set-up more than their values.
        """
        import pandas as pd

        items = list(snapshots)
        if not items:
            return []
        batch: list[tuple[str, pd.Timestamp, list[str], dict[str, list[pd.DataFrame]]]] = []
        for frames, collected_at, profiles in items:
            unknown = set(frames) - set(KINDS)
            if unknown:
                raise InvalidInputError(
                    f"unknown history kind(s) {', '.join(sorted(unknown))}: "
                    f"expected {', '.join(KINDS)}"
                )
            parts: dict[str, list[pd.DataFrame]] = {}
            for k, v in frames.items():
                parts[k] = [v] if isinstance(v, pd.DataFrame) else list(v)
            when = _utc(collected_at, "collected_at").floor("s")
            if profiles is None:
                seen: set[str] = set()
                for dfs in parts.values():
                    for df in dfs:
                        if "profile" in df.columns:
                            seen.update(str(p) for p in df["profile"].dropna().unique())
                profiles = sorted(seen)
            batch.append((snapshot_id(when, profiles), when, list(profiles), parts))
        # The same snapshot twice in one batch: the later one is stored, as by two writes.
        last = {sid: i for i, (sid, *_rest) in enumerate(batch)}
        unique = [b for i, b in enumerate(batch) if last[b[0]] == i]
        self._check_format(create=True)
        if len(unique) > 1 and self._version < SCHEMA_VERSION:
            self._upgrade_format()  # a batch marker: a version-1 reader would not see it
        records: list[dict[str, Any]] = [
            {
                "snapshot_id": sid,
                "collected_at": when.isoformat(),
                "schema_version": SCHEMA_VERSION,
                "pvekit_version": __version__,
                "profiles": profiles,
                "rows": {},
                "files": {},
            }
            for sid, when, profiles, _parts in unique
        ]
        for kind in KINDS:
            for record, table in zip(records, self._tables(kind, unique), strict=True):
                sid = record["snapshot_id"]
                path = self._data_path(kind, sid)
                self._put(path, _parquet_bytes(table))
                self._written(kind, path)
                record["rows"][kind] = table.num_rows
                record["files"][kind] = posixpath.relpath(path, self._root)
        if len(records) == 1:
            marker, body = records[0]["snapshot_id"], records[0]
        else:
            marker = _batch_name([r["snapshot_id"] for r in records])
            body = {"schema_version": SCHEMA_VERSION, "snapshots": records}
        self._put(self._path(_COMMITS, f"{marker}.json"), json.dumps(body, indent=1).encode())
        return [sid for sid, *_rest in batch]

    def _tables(
        self,
        kind: str,
        batch: list[tuple[str, pd.Timestamp, list[str], dict[str, list[pd.DataFrame]]]],
    ) -> list[pa.Table]:
        """One stored table of ``kind`` per snapshot of ``batch``."""
        import numpy as np
        import pandas as pd
        import pyarrow as pa

        from ._collect import _concat

        # pandas' concat as is: a category column whose categories differ between the frames
        # becomes object, which to_arrow turns into the same strings (the dictionaries are
        # built per snapshot afterwards), without re-coding 2 frames a day onto their union.
        per_snapshot = [[df for df in parts.get(kind, ()) if len(df)] for *_r, parts in batch]
        # stamped below whatever the frames hold (frames read back from a store have them)
        stamped = ("collected_at", "snapshot_id")
        flat = [df for dfs in per_snapshot for df in dfs]
        if not flat:
            whole = _schema.to_arrow(kind, pd.DataFrame(), encode=False, skip=stamped)
        elif _same_columns(flat):
            whole = _schema.to_arrow(
                kind,
                flat[0] if len(flat) == 1 else pd.concat(flat, ignore_index=True),
                encode=False,
                skip=stamped,
            )
        else:  # frames of different shapes: each snapshot on its own, concatenated as read
            whole = pa.concat_tables(
                [
                    _schema.to_arrow(
                        kind, _concat(dfs) if len(dfs) > 1 else dfs[0], encode=False, skip=stamped
                    )
                    for dfs in per_snapshot
                    if dfs
                ]
            )
        schema = _schema.arrow_schema(kind)
        counts = [sum(len(df) for df in dfs) for dfs in per_snapshot]
        # Stamped once for the batch (each row its snapshot's time, and id for status), cut
        # per snapshot after.
        stamp = schema.get_field_index("collected_at")
        times = np.repeat(np.array([when.value for _s, when, *_r in batch], np.int64), counts)
        field = schema.field(stamp)
        whole = whole.set_column(stamp, field, pa.array(times).cast(field.type))
        if kind == "status":
            i = schema.get_field_index("snapshot_id")
            ids = [sid for (sid, *_r), n in zip(batch, counts, strict=True) for _ in range(n)]
            whole = whole.set_column(i, schema.field(i), pa.array(ids, type=pa.string()))
        out = []
        offset = 0
        for n in counts:
            out.append(_schema.encode_dictionaries(kind, whole.slice(offset, n)))
            offset += n
        return out

    def _upgrade_format(self) -> None:
        info = {"format": _FORMAT, "schema_version": SCHEMA_VERSION, "created_by": __version__}
        self._put(self._path(_ROOT_FILE), json.dumps(info, indent=1).encode())
        self._version = SCHEMA_VERSION

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

    def _markers(self) -> tuple[set[str], dict[str, list[str]]]:
        """The committed snapshot ids with a marker of their own, and each batch marker's."""
        self._check_format(create=False)
        commits = self._path(_COMMITS)
        self._fs.invalidate_cache(commits)  # s3fs keeps listings: another writer may have added
        try:
            names = self._fs.ls(commits, detail=False)
        except FileNotFoundError:
            return set(), {}
        single: set[str] = set()
        batches: dict[str, list[str]] = {}
        for name in names:
            base = posixpath.basename(str(name).rstrip("/"))
            if not base.endswith(".json"):
                continue
            stem = base[:-5]
            if _SID.match(stem):
                single.add(stem)
            elif _BATCH.match(stem):
                batches[stem] = self._batch_sids(stem)
        return single, batches

    def _batch_sids(self, stem: str) -> list[str]:
        known = self._batches.get(stem)
        if known is None:
            body = json.loads(self._fs.cat_file(self._path(_COMMITS, f"{stem}.json")))
            known = [str(r["snapshot_id"]) for r in body.get("snapshots", [])]
            known = [sid for sid in known if _SID.match(sid)]
            self._batches[stem] = known
        return known

    def _committed(self) -> list[str]:
        single, batches = self._markers()
        return sorted(single.union(*batches.values()))

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
        """The commit record of one snapshot (its own marker, or its entry in a batch's)."""
        try:
            info = json.loads(self._fs.cat_file(self._path(_COMMITS, f"{sid}.json")))
            return info if isinstance(info, dict) else {}
        except FileNotFoundError:
            pass
        for stem, sids in self._markers()[1].items():
            if sid in sids:
                body = json.loads(self._fs.cat_file(self._path(_COMMITS, f"{stem}.json")))
                for record in body.get("snapshots", []):
                    if record.get("snapshot_id") == sid:
                        return dict(record)
        return {}

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
        single, batches = self._markers()
        sids = sorted(single.union(*batches.values()))
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
        # Markers first, files after: a reader never sees a snapshot with missing files.
        for sid in sorted(drop & single):
            self._fs.rm_file(self._path(_COMMITS, f"{sid}.json"))
        for stem, members in batches.items():
            if not drop.intersection(members):
                continue
            kept = [s for s in members if s not in drop]
            if kept:  # the rest of the batch under a new marker, before the old one goes
                self._recommit(stem, kept)
            self._fs.rm_file(self._path(_COMMITS, f"{stem}.json"))
        for sid in sorted(drop):
            for kind in KINDS:
                path = self._data_path(kind, sid)
                if self._fs.exists(path):
                    self._fs.rm_file(path)
        self._remove_orphans(set(sids) - drop, orphan_grace)
        if drop:
            log.info("pruned %d snapshot(s) from %s", len(drop), self.location)
        return sorted(drop)

    def _recommit(self, stem: str, kept: list[str]) -> None:
        body = json.loads(self._fs.cat_file(self._path(_COMMITS, f"{stem}.json")))
        records = [r for r in body.get("snapshots", []) if r.get("snapshot_id") in kept]
        if len(records) == 1:
            name, new = records[0]["snapshot_id"], records[0]
        else:
            name, new = _batch_name(kept), {**body, "snapshots": records}
        self._put(self._path(_COMMITS, f"{name}.json"), json.dumps(new, indent=1).encode())

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


# Below this many rows a file is snappy-compressed, zstd from there on. zstd's set-up per
# column chunk is most of the cost of encoding a small table (a demo day: 4.9 ms with zstd,
# 2.2 ms with snappy, for 50.7 vs 50.5 KB); on thousands of rows its better ratio pays.
# Every Parquet reader (DuckDB, Spark, Trino, pyarrow) reads both.
_ZSTD_FROM_ROWS = 1000


def _parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    codec = "zstd" if table.num_rows >= _ZSTD_FROM_ROWS else "snappy"
    pq.write_table(table, buf, compression=codec)
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
