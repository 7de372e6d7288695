"""The public surface: every name in ``pvekit.__all__`` resolves, and importing stays light."""

from __future__ import annotations

import re
import subprocess
import sys

import pvekit


def test_every_public_name_resolves() -> None:
    missing = [name for name in pvekit.__all__ if getattr(pvekit, name, None) is None]
    assert missing == []
    assert sorted(pvekit.__all__) == sorted(set(pvekit.__all__))


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        pvekit.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("pvekit.no_such_thing resolved")


def test_import_does_not_load_pandas_plotly_or_widgets() -> None:
    code = (
        "import sys, pvekit; "
        "print(sorted(m for m in ('pandas', 'plotly', 'ipywidgets', 'requests_cache') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_seed_parity_names_are_exported() -> None:
    for name in ("FailoverGroup", "FailoverEvent", "Node"):
        assert name in pvekit.__all__ and getattr(pvekit, name).__module__.startswith("pvekit.")


# The whole public surface, spelled out: adding or dropping a name is a deliberate act that
# changes this list (and the docs: docs/client.md lists the exception tree).
PUBLIC = {
    # connecting and handles
    "connect", "connect_group", "demo", "Cluster", "Group", "FailoverGroup", "FailoverEvent",
    "Guest", "GuestAgent", "ExecResult", "VNCProxy", "Node", "Task", "TaskStatus", "Profile",
    "load_config",
    # warnings
    "PartialResultWarning", "IncompleteDataWarning",
    # the exception tree (pvekit._errors)
    "PVEError", "ConfigError", "InvalidInputError", "InvalidVMIDError", "ConfigStringError",
    "InvalidSizeError", "GuestStateError", "TransportError", "TimeoutError", "TLSError",
    "ConnectionError", "APIError", "AuthenticationError", "TwoFactorRequiredError",
    "PermissionDeniedError", "NotFoundError", "ParameterError", "NotImplementedByServerError",
    "NodeUnreachableError", "ServerError", "TaskError", "TaskFailedError", "TaskTimeoutError",
    "GuestAgentError", "AgentExecTimeoutError", "ExportError", "HistoryError",
    "StoreFormatError", "PlanInvalidatedError", "AmbiguousGuestError",
    # seed utilities
    "UPID", "parse_upid", "format_bytes", "format_uptime", "parse_vmid", "safe_string",
    "safe_float", "safe_bool", "first_non_loopback_ip",
    # submodules
    "capacity", "charts", "frames", "history", "planning", "report", "sim", "widgets",
    "__version__",
}  # fmt: skip


def test_all_is_locked() -> None:
    assert set(pvekit.__all__) == PUBLIC


def _drawn_tree(doc: str) -> dict[str, str | None]:
    """Class -> parent as the docstring of ``_errors`` draws them (by indentation)."""
    block = doc.split("The tree::", 1)[1].strip("\n").split("\n\n", 1)[0]
    drawn: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        m = re.match(r"^(.*?)([A-Z]\w*Error)\b", line)
        if m is None or not re.fullmatch(r"[\s│├└─]*", m.group(1)):
            continue  # a continuation line of a description
        col = len(m.group(1))
        while stack and stack[-1][0] >= col:
            stack.pop()
        drawn[m.group(2)] = stack[-1][1] if stack else None
        stack.append((col, m.group(2)))
    return drawn


def test_every_exception_of_the_tree_is_public_and_drawn_where_it_sits() -> None:
    from pvekit import _errors

    classes = {
        name: obj
        for name, obj in vars(_errors).items()
        if isinstance(obj, type) and issubclass(obj, _errors.PVEError)
    }
    drawn = _drawn_tree(_errors.__doc__ or "")
    assert set(drawn) == set(classes)
    for name, cls in classes.items():
        assert name in _errors.__all__ and getattr(pvekit, name) is cls, name
        parent = drawn[name]
        if parent is None:
            assert cls is _errors.PVEError
        else:
            assert parent in [b.__name__ for b in cls.__bases__], (name, parent)


def test_moved_names_keep_their_old_import_locations() -> None:
    from pvekit import _errors, _guest, _parse, _tasks

    assert _guest.GuestStateError is _errors.GuestStateError is pvekit.GuestStateError
    assert _guest.AgentExecTimeoutError is _errors.AgentExecTimeoutError
    assert _parse.ConfigStringError is _errors.ConfigStringError is pvekit.ConfigStringError
    assert _parse.InvalidSizeError is _errors.InvalidSizeError is pvekit.InvalidSizeError
    assert issubclass(pvekit.InvalidSizeError, pvekit.ConfigStringError)
    assert issubclass(pvekit.ConfigStringError, pvekit.InvalidInputError)
    assert issubclass(pvekit.GuestStateError, pvekit.InvalidInputError)
    assert issubclass(pvekit.AgentExecTimeoutError, pvekit.GuestAgentError)
    assert issubclass(pvekit.AgentExecTimeoutError, TimeoutError)  # the builtin
    assert issubclass(pvekit.ExportError, pvekit.PVEError)
    from pvekit import history

    assert history.HistoryError is pvekit.HistoryError
    assert history.StoreFormatError is pvekit.StoreFormatError
    assert pvekit.TaskStatus is _tasks.TaskStatus
    assert (pvekit.GuestAgent, pvekit.ExecResult, pvekit.VNCProxy) == (
        _guest.GuestAgent,
        _guest.ExecResult,
        _guest.VNCProxy,
    )


def test_the_docs_draw_the_same_tree() -> None:
    import textwrap
    from pathlib import Path

    from pvekit import _errors

    block = (_errors.__doc__ or "").split("The tree::", 1)[1].strip("\n").split("\n\n", 1)[0]
    page = (Path(__file__).resolve().parent.parent / "docs" / "client.md").read_text()
    assert f"```text\n{textwrap.dedent(block)}\n```" in page, "copy the tree of _errors.py"
