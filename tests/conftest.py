"""Shared fixtures: simulators and clusters connected to them.

``sim`` is a real HTTP server on loopback (for what needs a connection: TLS, timeouts,
faults seen by the socket layer, other processes). ``fresh_sim`` and ``simx`` are served
in-process (``Simulator(inprocess=True)``): same model and answers, no socket, thread or TLS,
and ``connect_kwargs()`` carry the in-process ``session``. Module-scoped simulators are shared
by the tests of one module, so tests that change state should use ``fresh_sim``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pvekit import Cluster
    from pvekit.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep tests away from the developer's own config, env vars and cache directory."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PVEKIT_CONFIG", str(home / "pvekit" / "config.yaml"))
    monkeypatch.setenv("PVEKIT_PVETUI_CONFIG", str(home / "pvetui" / "config.yml"))
    monkeypatch.setenv("PVEKIT_CACHE_DIR", str(home / "cache"))
    for var in list(os.environ):
        if var.startswith("PROXMOX_") or var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(var, raising=False)


def _start(scenario: str = "demo", **kwargs: Any) -> Simulator:
    from pvekit.sim import Simulator

    sim = Simulator(scenario, **kwargs)
    sim.start()
    return sim


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """A demo simulator shared by one test module (read-only use)."""
    s = _start()
    yield s
    s.stop()


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    """A demo simulator of its own (in-process), for tests that change state or inject
    faults."""
    s = _start(inprocess=True)
    yield s
    s.stop()


@pytest.fixture
def http_sim() -> Iterator[Simulator]:
    """A demo simulator of its own served over loopback HTTP, for tests that need sockets
    (relays, cut connections, third-party clients)."""
    s = _start()
    yield s
    s.stop()


@pytest.fixture
def cluster(fresh_sim: Simulator) -> Iterator[Cluster]:
    """A Cluster connected with the root password to the demo ``prod`` cluster, no cache."""
    import pvekit

    c = pvekit.connect(**fresh_sim["prod"].connect_kwargs(identity="root"), cache=False)
    yield c
    c.close()


# -- a fast demo simulator shared by the guest-action test modules ------------------------------


@pytest.fixture(scope="module")
def simx() -> Iterator[Simulator]:
    """A demo simulator (in-process) of one test module whose tasks run 50 times faster than
    real time."""
    s = _start(task_scale=0.02, inprocess=True)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def root(simx: Simulator) -> Iterator[Cluster]:
    """A Cluster connected with the root password to ``simx``'s ``prod`` cluster, no cache."""
    import pvekit

    c = pvekit.connect(**simx["prod"].connect_kwargs(identity="root"), cache=False)
    yield c
    c.close()


@pytest.fixture
def prod(simx: Simulator) -> Iterator[Any]:
    """``simx``'s simulated ``prod``: request log emptied before, faults cleared after."""
    c = simx["prod"]
    c.clear_requests()
    yield c
    c.faults.clear()
