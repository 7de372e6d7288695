"""The endpoint table: what pvekit caches, for how long, where, and what each write makes stale.

One declarative table decides every caching question (in the spirit of python-gitlab's
managers, which declare paths and attributes instead of coding them):

- :data:`READS`: a GET path pattern -> how long its answer is kept (``ttl``, ``None``: never),
  how the pattern matches (the path and what lies below it, the path itself, or only what
  lies below it) and whether the answer is *persisted* in requests-cache (and so in the
  SQLite file) or kept in the client's memory only. The first matching entry wins.
- :data:`WRITES`: a POST/PUT/DELETE path pattern -> the reads (:class:`Stale` scopes) it
  makes stale. The client drops them when the write is sent and, when the write answers
  with a task, again when it sees that task end (a task's effect lands when it ends). The
  first matching entry wins; entries marked ``generic`` are the fall-backs for writes pvekit
  itself never sends (``cluster.post(...)`` by hand).

Placeholders in patterns: ``{type}`` is ``qemu`` or ``lxc``, ``{vmid}`` a number, ``{name*}``
one or more segments, any other ``{name}`` one segment. In a :class:`Stale` scope a
placeholder is filled from the write's own path, else from its parameters (a ``target``,
``target-node`` or ``node`` parameter fills ``{target}``; a comma list fills it once per item);
a scope whose placeholder has no value is skipped. A ``*`` segment in a scope matches any one
segment (every node).

:func:`markdown_table` renders both tables for docs/client.md (tests/test_endpoints.py fails
when the page differs from it; ``python scripts/build_docs.py`` rewrites it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DEFAULT_TTL",
    "READS",
    "WRITES",
    "Read",
    "Scope",
    "Stale",
    "Write",
    "markdown_table",
    "persisted",
    "read_for",
    "read_regex",
    "stale_scopes",
    "ttl_for",
    "write_for",
]

#: Seconds an answer of an endpoint not listed in :data:`READS` stays fresh.
DEFAULT_TTL = 30

Match = Literal["prefix", "exact", "below"]

# Placeholders with a shape of their own; every other ``{name}`` is one segment.
_SEG = {"type": r"(?:qemu|lxc)", "vmid": r"\d+"}
_PLACEHOLDER = re.compile(r"\{([a-z_-]+)(\*?)\}")
_TARGET_PARAMS = ("target", "target-node", "node")


def _pattern_regex(pattern: str, *, named: bool) -> str:
    out: list[str] = []
    used: set[str] = set()
    pos = 0
    for m in _PLACEHOLDER.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        name, many = m.group(1), m.group(2)
        body = r"[^/?]+(?:/[^/?]+)*" if many else _SEG.get(name, r"[^/?]+")
        group = name.replace("-", "_")
        out.append(f"(?P<{group}>{body})" if named and group not in used else body)
        used.add(group)
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return "".join(out)


@dataclass(frozen=True)
class Read:
    """How the answer of ``GET pattern`` is cached."""

    pattern: str
    ttl: int | None
    match: Match = "prefix"
    persisted: bool = True
    why: str = ""

    def tail(self) -> str:
        """What may follow the pattern in a URL path (and query) for the entry to apply."""
        return {"prefix": r"(?:[/?]|$)", "exact": r"(?:\?|$)", "below": r"/"}[self.match]


# Why per-guest reads skip requests-cache (measured): requests-cache costs ~1.7 ms (memory) to
# ~3.3 ms (SQLite) of CPU per miss; on a fan-out over 1,000 guests that, not the network,
# sets the pace. Cluster-level reads are few and worth keeping across kernel restarts;
# per-guest reads (config, agent, status, rrddata) are many and short-lived, so they live in
# the client's in-memory layer only.
_GUEST_MEMORY_ONLY = "per guest: memory only (requests-cache's ~2-3 ms of CPU per miss)"

#: GET patterns from specific to general: the first match wins.
READS: tuple[Read, ...] = (
    Read("/access/ticket", None, why="login"),
    Read("/nodes/{node}/tasks/{upid}/status", None, why="task status: always asked"),
    Read("/nodes/{node}/tasks/{upid}/log", None, why="task log: always asked"),
    Read("/nodes/{node}/qemu/{vmid}/agent/exec-status", None, why="a command's progress"),
    Read("/nodes/{node}/tasks", 5, "exact"),
    Read("/cluster/tasks", 5),
    Read("/nodes/{node}/{type}/{vmid}/status/current", 10, persisted=False),
    Read("/nodes/{node}/{type}/{vmid}/rrddata", 60, persisted=False),
    Read("/nodes/{node}/qemu/{vmid}/agent", 30, persisted=False),
    Read("/nodes/{node}/lxc/{vmid}/interfaces", 30, persisted=False),
    Read("/nodes/{node}/{type}/{vmid}/snapshot", 60, persisted=False),
    Read("/nodes/{node}/{type}/{vmid}/config", 300, persisted=False),
    Read("/nodes/{node}/{type}/{vmid}/pending", 300, persisted=False),
    Read("/nodes/{node}/{type}/{vmid}", DEFAULT_TTL, "below", persisted=False),
    Read("/nodes/{node}/{type}", 10, "exact", why="a node's guest list"),
    Read("/nodes/{node}/storage/{storage}/content", 300),
    Read("/nodes/{node}/storage/{storage}/rrddata", 60),
    Read("/nodes/{node}/storage", 30, why="and each storage's status"),
    Read("/nodes/{node}/rrddata", 60),
    Read("/nodes/{node}/status", 10),
    Read("/nodes/{node}/version", 3600),
    Read("/nodes/{node}/network", 300),
    Read("/nodes/{node}/dns", 300),
    Read("/nodes/{node}/hosts", 300),
    Read("/nodes", 10, "exact"),
    Read("/cluster/resources", 10),
    Read("/cluster/status", 10),
    Read("/cluster/ha", 30),
    Read("/cluster/options", 300),
    Read("/cluster/config", 300),
    Read("/storage", 300),
    Read("/pools", 60),
    Read("/version", 3600),
)

_READ_REGEX = tuple(
    (re.compile("^" + _pattern_regex(r.pattern, named=False) + r.tail()), r) for r in READS
)


def read_regex(entry: Read) -> str:
    """The regular expression (no anchor) of a path and query ``entry`` applies to."""
    return _pattern_regex(entry.pattern, named=False) + entry.tail()


@functools.lru_cache(maxsize=16384)
def read_for(path: str) -> Read | None:
    """The entry of :data:`READS` that decides ``GET path`` (``None``: the default TTL).

    Remembered per path: a read asks it up to three times (TTL, persisted, lean path) and
    each ask is a scan of the whole table; the table is fixed at import.
    """
    for regex, entry in _READ_REGEX:
        if regex.match(path):
            return entry
    return None


def ttl_for(path: str) -> int | None:
    """Seconds a GET of ``path`` (relative to /api2/json) is cached; ``None``: never."""
    entry = read_for(path)
    return DEFAULT_TTL if entry is None else entry.ttl


def persisted(method: str, path: str) -> bool:
    """Whether an answer goes through requests-cache (and so into the SQLite file): a GET
    that is cached at all and whose entry is not memory-only (see ``_GUEST_MEMORY_ONLY``)."""
    if method != "GET":
        return False
    entry = read_for(path)
    return entry is None or (entry.ttl is not None and entry.persisted)


# --------------------------------------------------------------------------------------------
# Writes


@dataclass(frozen=True)
class Stale:
    """Reads a write makes stale: ``pattern`` and what lies below it, or (``exact``) only
    ``pattern`` itself (a node's guest list, not every guest's config below it)."""

    pattern: str
    exact: bool = False


@dataclass(frozen=True)
class Scope:
    """A concrete :class:`Stale`: a path (``*`` segments match any segment)."""

    path: str
    exact: bool = False

    def covers(self, path: str) -> bool:
        """Whether a read of ``path`` is among the reads this scope names."""
        mine = [s for s in self.path.split("/") if s]
        theirs = [s for s in path.split("/") if s]
        if len(theirs) < len(mine) or (self.exact and len(theirs) != len(mine)):
            return False
        return all(a in ("*", b) for a, b in zip(mine, theirs, strict=False))


@dataclass(frozen=True)
class Write:
    """The reads ``METHOD pattern`` makes stale (``stale=()``: none, said explicitly)."""

    pattern: str
    methods: tuple[str, ...]
    stale: tuple[Stale, ...]
    generic: bool = False
    why: str = ""


_ANY = ("POST", "PUT", "DELETE")
# Every write: the inventory, the task lists and HA state change with (almost) anything.
_ALWAYS = (Stale("/cluster/resources"), Stale("/cluster/tasks"), Stale("/cluster/ha"))
_NODE = (
    *_ALWAYS,
    Stale("/nodes", exact=True),
    Stale("/nodes/{node}/tasks", exact=True),
    Stale("/nodes/{node}/status"),
)
_GUEST = (
    *_NODE,
    Stale("/nodes/{node}/{type}/{vmid}"),
    Stale("/nodes/{node}/{type}", exact=True),
    Stale("/nodes/{node}/storage"),
)
# A second node the write involves (migrate, clone, a node= parameter).
_TARGET = (
    Stale("/nodes/{target}/qemu", exact=True),
    Stale("/nodes/{target}/lxc", exact=True),
    Stale("/nodes/{target}/storage"),
    Stale("/nodes/{target}/tasks", exact=True),
    Stale("/nodes/{target}/status"),
)
# A volume on a storage that may be shared: every node's listing of it changes.
_VOLUMES = (*_NODE, Stale("/nodes/*/storage"))

#: Write patterns from specific to general: the first match wins.
WRITES: tuple[Write, ...] = (
    Write("/access/ticket", ("POST",), (), why="a login changes nothing"),
    Write("/nodes/{node}/{type}/{vmid}/vncproxy", ("POST",), (), why="opens a console"),
    Write("/nodes/{node}/{type}/{vmid}/termproxy", ("POST",), (), why="opens a console"),
    Write("/nodes/{node}/vncshell", ("POST",), (), why="opens a shell"),
    Write("/nodes/{node}/termproxy", ("POST",), (), why="opens a shell"),
    Write("/nodes/{node}/{type}/{vmid}/status/{action}", ("POST",), _GUEST),
    Write("/nodes/{node}/{type}/{vmid}/migrate", ("POST",), (*_GUEST, *_TARGET)),
    Write(
        "/nodes/{node}/{type}/{vmid}/clone",
        ("POST",),
        (*_GUEST, *_TARGET, Stale("/cluster/nextid")),
    ),
    Write("/nodes/{node}/{type}/{vmid}/config", ("POST", "PUT"), _GUEST),
    Write("/nodes/{node}/{type}/{vmid}/resize", ("PUT",), _GUEST),
    Write("/nodes/{node}/{type}/{vmid}/snapshot", ("POST",), _GUEST),
    Write("/nodes/{node}/{type}/{vmid}/snapshot/{snapname}", ("DELETE",), _GUEST),
    Write("/nodes/{node}/{type}/{vmid}/snapshot/{snapname}/rollback", ("POST",), _GUEST),
    Write("/nodes/{node}/qemu/{vmid}/agent/{command*}", ("POST",), _GUEST),
    Write(
        "/nodes/{node}/{type}/{vmid}",
        ("DELETE",),
        (*_GUEST, Stale("/pools"), Stale("/cluster/nextid")),
    ),
    Write(
        "/nodes/{node}/vzdump",
        ("POST",),
        (
            *_NODE,
            Stale("/nodes/{node}/storage"),
            Stale("/nodes/{node}/qemu/{vmid}"),
            Stale("/nodes/{node}/lxc/{vmid}"),
            Stale("/nodes/{node}/qemu", exact=True),
            Stale("/nodes/{node}/lxc", exact=True),
        ),
        why="backup: the archive and the guest's lock",
    ),
    Write(
        "/nodes/{node}/{type}",
        ("POST",),
        (
            *_NODE,
            Stale("/nodes/{node}/{type}", exact=True),
            Stale("/nodes/{node}/{type}/{vmid}"),
            Stale("/nodes/{node}/storage"),
            Stale("/cluster/nextid"),
            Stale("/pools"),
        ),
        why="create or restore a guest",
    ),
    Write("/nodes/{node}/storage/{storage}/content/{volume}", ("DELETE",), _VOLUMES),
    Write("/nodes/{node}/storage/{storage}/download-url", ("POST",), _VOLUMES),
    Write("/nodes/{node}/storage/{storage}/oci-registry-pull", ("POST",), _VOLUMES),
    Write(
        "/nodes/{node}/aplinfo",
        ("POST",),
        (*_VOLUMES, Stale("/nodes/{node}/aplinfo")),
        why="download an appliance",
    ),
    Write("/nodes/{node}/apt/update", ("POST",), (*_NODE, Stale("/nodes/{node}/apt"))),
    Write(
        "/nodes/{node}/tasks/{upid}",
        ("DELETE",),
        (*_NODE, Stale("/nodes/{node}/tasks/{upid}")),
        why="stop a task",
    ),
    # Fall-backs for writes pvekit does not send itself.
    Write("/nodes/{node}/{type}/{vmid}/{rest*}", _ANY, (*_GUEST, *_TARGET), generic=True),
    Write(
        "/nodes/{node}/{family}/{rest*}",
        _ANY,
        (*_NODE, Stale("/nodes/{node}/{family}"), *_TARGET),
        generic=True,
    ),
    Write(
        "/nodes/{node}/{family}",
        _ANY,
        (*_NODE, Stale("/nodes/{node}/{family}"), *_TARGET),
        generic=True,
    ),
    Write("/nodes/{node}", _ANY, (*_NODE, *_TARGET), generic=True),
    Write("/storage/{rest*}", _ANY, (*_ALWAYS, Stale("/storage"), Stale("/nodes")), generic=True),
    Write("/storage", _ANY, (*_ALWAYS, Stale("/storage"), Stale("/nodes")), generic=True),
    Write("/{parent*}/{name}", _ANY, (*_ALWAYS, Stale("/{parent}"), *_TARGET), generic=True),
    Write("/{name}", _ANY, (*_ALWAYS, Stale("/{name}"), *_TARGET), generic=True),
)

_WRITE_REGEX = tuple(
    (re.compile("^" + _pattern_regex(w.pattern, named=True) + "$"), w) for w in WRITES
)


def write_for(method: str, path: str) -> tuple[Write, dict[str, str]] | None:
    """The entry of :data:`WRITES` for ``METHOD path``, with the placeholders it captured."""
    for regex, entry in _WRITE_REGEX:
        if method in entry.methods:
            m = regex.match(path)
            if m:
                return entry, {k.replace("_", "-"): v for k, v in m.groupdict().items()}
    return None


def _values(name: str, captured: Mapping[str, str], params: Mapping[str, Any]) -> list[str]:
    if name in captured:
        return [captured[name]]
    keys = _TARGET_PARAMS if name == "target" else (name,)
    out: list[str] = []
    for key in keys:
        value = params.get(key)
        if isinstance(value, int | str) and not isinstance(value, bool):
            out += [v for v in str(value).split(",") if v and "/" not in v and v != "*"]
    return out


def _fill(pattern: str, captured: Mapping[str, str], params: Mapping[str, Any]) -> Iterator[str]:
    m = _PLACEHOLDER.search(pattern)
    if m is None:
        yield pattern
        return
    for value in dict.fromkeys(_values(m.group(1), captured, params)):
        yield from _fill(pattern[: m.start()] + value + pattern[m.end() :], captured, params)


def stale_scopes(method: str, path: str, params: Mapping[str, Any]) -> list[Scope]:
    """The concrete reads ``METHOD path`` with ``params`` makes stale, per :data:`WRITES`."""
    found = write_for(method, path)
    if found is None:
        return []
    entry, captured = found
    scopes: dict[Scope, None] = {}
    for stale in entry.stale:
        for concrete in _fill(stale.pattern, captured, params):
            scopes[Scope(concrete, stale.exact)] = None
    return list(scopes)


# --------------------------------------------------------------------------------------------
# Documentation


def _ttl_text(ttl: int | None) -> str:
    return "never" if ttl is None else f"{ttl} s"


def _md_rows(rows: Iterable[Iterable[str]]) -> list[str]:
    return ["| " + " | ".join(cells) + " |" for cells in rows]


def markdown_table() -> str:
    """The caching tables of docs/client.md, generated from :data:`READS` and :data:`WRITES`."""
    how = {"prefix": "and below", "exact": "itself", "below": "below only"}
    lines = [
        "Reads (first match wins; paths relative to `/api2/json`; *kept in*: `file` is",
        "requests-cache, so the SQLite file with `cache=True`, plus the memory layer;",
        "`memory` is the client's memory layer only. With",
        '`cache="memory"` every row is kept in the memory layer only, for the same TTL):',
        "",
        "| endpoint | matches | TTL | kept in | note |",
        "|---|---|---|---|---|",
    ]
    lines += _md_rows(
        (
            f"`{r.pattern}`",
            how[r.match],
            _ttl_text(r.ttl),
            "-" if r.ttl is None else ("file" if r.persisted else "memory"),
            r.why or ("" if r.persisted or r.ttl is None else _GUEST_MEMORY_ONLY),
        )
        for r in READS
    )
    lines.append(f"| anything else | | {DEFAULT_TTL} s | file | |")
    lines += [
        "",
        "Writes and the reads each makes stale (dropped when it is sent, and again when its",
        "task ends; `{target}` is a `target`, `target-node` or `node` parameter; `(exact)`:",
        "that path only, not what lies below it; `*`: every node). Rows marked *generic* are",
        "the fall-backs for writes sent by hand:",
        "",
        "| write | methods | makes stale |",
        "|---|---|---|",
    ]
    lines += _md_rows(
        (
            f"`{w.pattern}`" + (" *generic*" if w.generic else ""),
            ", ".join(w.methods),
            ", ".join(_named(w.stale)) or f"none ({w.why})",
        )
        for w in WRITES
    )
    lines += ["", "where:", ""]
    lines += [f"- **{name}**: {', '.join(_named(group, below=name))}" for name, group in _GROUPS]
    return "\n".join(lines) + "\n"


# Named sets of the table, largest first (the docs write them by name).
_GROUPS = (
    ("GUEST", _GUEST),
    ("VOLUMES", _VOLUMES),
    ("NODE", _NODE),
    ("TARGET", _TARGET),
    ("ALWAYS", _ALWAYS),
)


def _named(stale: tuple[Stale, ...], *, below: str = "") -> list[str]:
    """``stale`` as text, runs equal to a named set (smaller than ``below``) by that name."""
    names = [n for n, _ in _GROUPS]
    usable = _GROUPS[names.index(below) + 1 :] if below else _GROUPS
    out: list[str] = []
    i = 0
    while i < len(stale):
        for name, group in usable:
            if stale[i : i + len(group)] == group:
                out.append(f"**{name}**")
                i += len(group)
                break
        else:
            s = stale[i]
            out.append(f"`{s.pattern}`" + (" (exact)" if s.exact else ""))
            i += 1
    return out
