"""The split modules (issue 15, item 6): each package re-exports what its parts export, and the
public names stay importable where they were (``pvekit.capacity.X``, ``pvekit.report.X``...)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

PACKAGES = ("pvekit.capacity", "pvekit.report")


@pytest.mark.parametrize("name", PACKAGES)
def test_package_all_is_the_union_of_its_parts(name: str) -> None:
    pkg = importlib.import_module(name)
    parts: set[str] = set()
    for info in pkgutil.iter_modules(pkg.__path__):
        assert info.name.startswith("_"), f"{name}.{info.name} should be a private module"
        mod = importlib.import_module(f"{name}.{info.name}")
        parts |= set(getattr(mod, "__all__", ()))
    exported = set(pkg.__all__)
    # a name a part exports but the package does not would have no public path
    assert not parts - exported, parts - exported
    assert all(hasattr(pkg, n) for n in exported)
    from_elsewhere = exported - parts - _REEXPORTED.get(name, set())
    assert not from_elsewhere, f"{name} exports names no part of it defines: {from_elsewhere}"


# names a package re-exports from outside itself, on purpose (pvekit/_growth.py)
_REEXPORTED = {
    "pvekit.capacity": {"GROWTH_COLUMNS", "allocation", "growth", "growth_trend", "guest_changes"},
}


def test_names_stay_where_they_were() -> None:
    import pvekit.capacity as capacity
    import pvekit.report as report
    import pvekit.widgets as widgets

    for mod, names in (
        (capacity, ("analyse", "headroom", "theil_sen", "Thresholds", "growth", "FINDING_COLUMNS")),
        (report, ("capacity", "from_frames", "Report", "ExportError", "run", "add_arguments")),
        (widgets, ("GuestPanel", "TaskView", "PlanPanel", "Dashboard")),
    ):
        for n in names:
            assert n in mod.__all__ and getattr(mod, n) is not None


def test_simulator_routes_register_from_a_fresh_interpreter() -> None:
    """Importing the handler core alone registers every group split out of it (as a spawned
    worker process does), with the guest-type table filled in for their paths."""
    code = (
        "from pvekit.sim._handlers import ROUTES, GUEST_TYPE_OF, ACTION_OF;"
        "assert ('/nodes/{node}/qemu/{vmid}/agent/ping', 'POST') in ROUTES;"
        "assert ('/nodes/{node}/storage/{storage}/content', 'GET') in ROUTES;"
        "assert GUEST_TYPE_OF['/nodes/{node}/lxc/{vmid}/snapshot'] == 'lxc';"
        "assert ACTION_OF['/nodes/{node}/qemu/{vmid}/status/start'] == 'start';"
        "print(len(ROUTES))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) > 100
