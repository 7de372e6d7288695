"""The API client's in-memory cache layer: one owner for answers, cache keys, frames and tasks.

requests-cache is the persistent HTTP cache (the SQLite file, ``cache=True``); this layer sits
in front of it and is the only in-memory cache of a client (:class:`~pvekit._api.ApiClient`
holds one). With ``cache="memory"`` there is no requests-cache: this layer is the whole cache,
each answer held for its TTL from the endpoint table. It holds:

- the raw bodies of fresh GET answers, so a warm read costs one ``json.loads`` instead of a
  pass through requests and requests-cache (~2 ms of CPU);
- the requests-cache keys of stored answers (``cache=True``), so a write can delete exactly
  the stale ones from the file;
- frames built from cached bodies, handed out again (as copies) while every body they were
  built from is still the very same answer;
- the reads each running task (by UPID) will have made stale when it ends.

Everything is filed in a tree of path segments, so a write reaches only what it makes stale:
dropping ``/nodes/pve1/qemu/100`` detaches that one subtree, whatever else is held, and
:attr:`MemoryLayer.examined` counts the entries a drop looked at (tests assert it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Any

from ._endpoints import Scope

__all__ = ["Answer", "MemoryLayer", "Query"]

Query = tuple[tuple[str, str], ...]
#: One held answer: (expiry as epoch seconds, raw body). Its identity is the memo token.
Answer = tuple[float, bytes]


class _Node:
    __slots__ = ("answers", "children", "keys")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.answers: dict[Query, Answer] = {}
        self.keys: set[str] = set()

    def size(self) -> int:
        return len(self.answers) + len(self.keys)


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


class MemoryLayer:
    """Answers, cache keys, frames and task scopes of one client, filed by path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._root = _Node()
        self._frames: dict[Hashable, tuple[dict[tuple[str, Query], object], Any]] = {}
        self._tasks: dict[str, list[Scope]] = {}
        #: Entries (answers and cache keys) the drops so far have looked at.
        self.examined = 0

    # -- answers ------------------------------------------------------------------------------

    def _find(self, path: str) -> _Node | None:
        node = self._root
        for seg in _segments(path):
            child = node.children.get(seg)
            if child is None:
                return None
            node = child
        return node

    def _make(self, path: str) -> _Node:
        node = self._root
        for seg in _segments(path):
            child = node.children.get(seg)
            if child is None:
                child = node.children[seg] = _Node()
            node = child
        return node

    def answer(self, path: str, query: Query) -> Answer | None:
        """The held answer of ``GET path?query`` while it is fresh, else ``None``."""
        node = self._find(path)
        entry = None if node is None else node.answers.get(query)
        if entry is None or entry[0] <= time.time():
            return None
        return entry

    def put(self, path: str, query: Query, until: float, body: bytes) -> None:
        with self._lock:
            self._make(path).answers[query] = (until, body)

    def add_key(self, path: str, key: str) -> None:
        """Note that requests-cache stores an answer of ``path`` under ``key``."""
        with self._lock:
            self._make(path).keys.add(key)

    # -- invalidation -------------------------------------------------------------------------

    def _targets(self, path: str) -> Iterator[tuple[_Node, str, _Node]]:
        """(parent, segment, node) of every node ``path`` names (``*`` matches any segment)."""
        segs = _segments(path)
        if not segs:
            return
        level: list[tuple[_Node, str, _Node]] = [(self._root, "", self._root)]
        for seg in segs:
            nxt: list[tuple[_Node, str, _Node]] = []
            for _, _, node in level:
                if seg == "*":
                    nxt += [(node, s, child) for s, child in list(node.children.items())]
                elif (child := node.children.get(seg)) is not None:
                    nxt.append((node, seg, child))
            level = nxt
        yield from level

    def drop(self, scopes: Iterable[Scope]) -> tuple[list[str], list[str]]:
        """Forget what ``scopes`` make stale: (requests-cache keys to delete, paths hit)."""
        keys: list[str] = []
        hit: list[str] = []
        with self._lock:
            for scope in scopes:
                if scope.path.strip("/") == "" and not scope.exact:  # "/": everything
                    for sub in _walk(self._root):
                        self.examined += sub.size()
                        keys += sub.keys
                    self._root = _Node()
                    hit.append("/")
                    continue
                for parent, seg, node in list(self._targets(scope.path)):
                    if scope.exact:
                        self.examined += node.size()
                        if node.size():
                            hit.append(scope.path)
                        keys += node.keys
                        node.answers.clear()
                        node.keys.clear()
                        continue
                    del parent.children[seg]
                    for sub in _walk(node):
                        self.examined += sub.size()
                        keys += sub.keys
                    hit.append(scope.path)
            if hit:
                self._frames.clear()
        return keys, hit

    def clear(self) -> None:
        with self._lock:
            self._root = _Node()
            self._frames.clear()

    # -- frames -------------------------------------------------------------------------------

    def keep_frame(
        self, key: Hashable, frame: Any, inputs: Mapping[tuple[str, Query], object]
    ) -> None:
        """Keep ``frame`` (a copy) while every input answer is the token given for it."""
        if inputs and all(token is not None for token in inputs.values()):
            with self._lock:
                self._frames[key] = (dict(inputs), frame.copy())

    def frame(self, key: Hashable) -> Any | None:
        """A copy of the frame kept under ``key`` if none of its inputs changed, else ``None``."""
        hit = self._frames.get(key)
        if hit is None:
            return None
        inputs, frame = hit
        for (path, query), token in inputs.items():
            if self.answer(path, query) is not token:
                return None
        return frame.copy()

    # -- tasks --------------------------------------------------------------------------------

    def note_task(self, upid: str, scopes: list[Scope]) -> None:
        """A write answered with task ``upid``: its reads are stale again when it ends."""
        with self._lock:
            self._tasks[upid] = scopes

    def pending_tasks(self) -> bool:
        return bool(self._tasks)

    def task_ended(self, upid: str) -> list[Scope]:
        with self._lock:
            return self._tasks.pop(upid, [])


def _walk(node: _Node) -> Iterator[_Node]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.children.values())
