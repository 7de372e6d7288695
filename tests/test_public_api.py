"""The public surface: every name in ``pvekit.__all__`` resolves, and importing stays light."""

from __future__ import annotations

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
