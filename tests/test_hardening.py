"""Hardening (issue 13): what a hostile network, a bad config and a careless paste can do.

Each test names the item of the issue it covers. Hostile servers run on 127.0.0.1, answer a
bounded number of requests and stop by themselves; calls that used to hang run in a helper
thread with a generous bound, so a regression fails instead of holding the suite.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import pvekit
from pvekit import InvalidInputError, InvalidVMIDError
from pvekit._format import parse_vmid
from pvekit._guest import _node_name, _storage_id, _tags_text, validate_snapshot_name


def bounded(fn: Callable[[], Any], limit: float) -> Any:
    """Run ``fn`` in a thread; fail if it has not returned (or raised) within ``limit`` s."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the test
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit)
    assert not worker.is_alive(), f"still running after {limit} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# -- 12: full-match ASCII validation ---------------------------------------------------------


@pytest.mark.parametrize(
    "vmid", ["100\n", "\uff11\uff10\uff10", "1\u06600", "100\t", "\n100", "10\u00a00"]
)
def test_12_vmid_rejects_newline_and_non_ascii_digits(vmid: str) -> None:
    with pytest.raises(InvalidVMIDError):
        parse_vmid(vmid)


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (validate_snapshot_name, "before\n"),
        (validate_snapshot_name, "\uff53nap1"),
        (_storage_id, "local\n"),
        (_storage_id, "local-\u212avm"),  # KELVIN SIGN folds to 'k' under IGNORECASE
        (_node_name, "pve1\n"),
        (lambda v: _tags_text([v]), "web\n"),
        (lambda v: _tags_text([v]), "\u212aube"),
    ],
)
def test_12_names_are_full_match_ascii(check: Callable[[str], Any], value: str) -> None:
    with pytest.raises(InvalidInputError):
        check(value)


def test_12_bad_names_send_nothing(fresh_sim: Any) -> None:
    c = pvekit.connect(**fresh_sim["prod"].connect_kwargs(identity="root"), cache=False)
    try:
        g = c.guest(100)
        with pytest.raises(InvalidVMIDError):
            c.guest("\uff11\uff10\uff10")
        fresh_sim["prod"].clear_requests()
        with pytest.raises(InvalidInputError):
            g.snapshot("before\n")
        with pytest.raises(InvalidInputError):
            g.update(tags=["web\n"])
        writes = [r for r in fresh_sim["prod"].requests if r.method != "GET"]
        assert writes == []
    finally:
        c.close()
