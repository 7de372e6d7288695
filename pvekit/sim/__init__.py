"""pvekit.sim: an embedded, stateful Proxmox VE API simulator.

Real HTTP(S) servers on loopback, one per simulated cluster, answering like
``pve-api-daemon``: every request is routed and validated against the official API schema,
authenticated (tickets, CSRF, TOTP, API tokens), permission-checked, and served from an
in-memory model whose actions (start, migrate, backup, ...) run as tasks with real UPIDs.

::

    from pvekit.sim import Simulator

    with Simulator("demo") as sim:             # also "large" (nodes=, guests=) and "empty"
        prod = sim["prod"]
        import pvekit
        cluster = pvekit.connect(**prod.connect_kwargs(identity="root"))

``pvekit sim --scenario demo --port 8006`` serves the same from the command line.
See ``docs/simulator.md`` for identities, faults, task timing and the request log.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from ._auth import totp
from ._clock import SimClock
from ._faults import FaultRule, Faults, FaultsGroup
from ._inprocess import SimTransport
from ._schema import load_schema
from ._server import RecordedRequest, SimCluster
from ._state import ClusterState, TaskPolicy

__all__ = [
    "ClusterState",
    "FaultRule",
    "Faults",
    "FaultsGroup",
    "RecordedRequest",
    "SimClock",
    "SimCluster",
    "SimTransport",
    "Simulator",
    "TaskPolicy",
    "add_arguments",
    "load_schema",
    "modelled_endpoints",
    "run",
    "totp",
]

SCENARIO_NAMES = ("demo", "large", "empty")


def modelled_endpoints(pve_version: str = "9.1") -> list[tuple[str, str]]:
    """``(method, path)`` of every schema endpoint the simulator has a model (a handler) for.

    Every other GET of the schema answers in its documented shape without content (an
    empty list or object, or ``null``; index paths list their children) or 501 where the
    shape is a scalar or undocumented; every other write answers 501.
    """
    from . import _server  # noqa: F401  (imports every handler module)
    from ._handlers import ROUTES

    schema = load_schema(pve_version)
    return sorted((m, p) for (p, m) in ROUTES if (p, m) in schema.endpoints)


PVE_VERSIONS = ("8.4", "9.1")


class Simulator:
    """A set of simulated Proxmox VE clusters served over HTTP(S) on loopback.

    ``scenario`` is ``"demo"`` (clusters ``prod`` and ``lab``), ``"large"`` (one cluster
    ``large``; ``nodes=``, ``guests=``) or ``"empty"``. ``port=0`` picks free ports; a fixed
    port serves the clusters on consecutive ports. ``seed`` makes inventory, metrics and
    faults reproducible. ``pve_version`` is ``"9.1"`` or ``"8.4"``. ``clock`` defaults to a
    :class:`SimClock` (real time that tests can :meth:`~SimClock.advance`).

    Scenario options: ``task_duration`` (seconds for every task; ``math.inf`` = never ends),
    ``task_durations`` (per task type, e.g. ``{"vzdump": 30}``), ``task_outcomes`` (per type,
    e.g. ``{"qmstart": "start failed"}``), ``task_scale`` (multiplies default durations), and
    for ``demo`` ``offline_nodes=("pve3",)``.

    ``inprocess=True`` serves the clusters only through the in-process transport
    (:class:`SimTransport`): no socket, thread or TLS; ``connect_kwargs()`` then carry the
    ``session`` to pass to :func:`pvekit.connect`. Any simulator can also be used in-process
    with ``connect_kwargs(identity, inprocess=True)``, started or not.
    """

    def __init__(
        self,
        scenario: str = "demo",
        *,
        https: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        pve_version: str = "9.1",
        clock: SimClock | None = None,
        inprocess: bool = False,
        **scenario_kwargs: Any,
    ) -> None:
        from ._scenarios import build_scenario

        if scenario not in SCENARIO_NAMES:
            raise ValueError(
                f"unknown simulator scenario {scenario!r}; choose one of "
                f"{', '.join(SCENARIO_NAMES)}"
            )
        if str(pve_version) not in PVE_VERSIONS:
            raise ValueError(
                f"pve_version must be one of {', '.join(PVE_VERSIONS)}, not {pve_version!r}"
            )
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, not {port!r}")
        self.scenario = scenario
        self.https = https
        self.host = host
        self.port = port
        self.seed = seed
        self.pve_version = str(pve_version)
        self.clock = clock if clock is not None else SimClock()
        self.inprocess = inprocess
        self._lock = threading.Lock()
        self._started = False
        states = build_scenario(scenario, self.clock, seed, self.pve_version, dict(scenario_kwargs))
        cert = None
        if https and not inprocess:
            from ._tls import make_cert

            cert = make_cert("pvekit-sim", host)
            # The files live as long as this object, not one start/stop cycle: a stopped
            # simulator (or one cluster of it) can start again with the same fingerprint.
            weakref.finalize(self, shutil.rmtree, cert.directory, ignore_errors=True)
        self._cert = cert
        from ._auth import AuthDB

        self.clusters: dict[str, SimCluster] = {}
        for i, st in enumerate(states):
            self.clusters[st.name] = SimCluster(
                name=st.name,
                state=st,
                auth=AuthDB(st.name, self.clock, seed, st.major),
                faults=Faults(seed, st.name, st.policy),
                host_ip=host,
                port=port + i if port else 0,
                https=https and not inprocess,
                cert=cert,
                inprocess=inprocess,
            )

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Start serving every cluster (idempotent); returns self."""
        with self._lock:
            if self._started:
                return self
            started: list[SimCluster] = []
            try:
                for c in self.clusters.values():
                    c.start()
                    started.append(c)
            except BaseException:
                for c in started:
                    c.stop()
                raise
            self._started = True
        return self

    def stop(self) -> None:
        """Stop every server (idempotent); it may be started again."""
        with self._lock:
            for c in self.clusters.values():
                c.stop()
            self._started = False

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            # At interpreter exit the daemon serve threads are frozen: shutdown() would wait
            # for them forever; they end with the process anyway.
            if self._started and not sys.is_finalizing():
                self.stop()
        except Exception:
            pass

    # -- access -----------------------------------------------------------------------------

    def __getitem__(self, name: str) -> SimCluster:
        try:
            return self.clusters[name]
        except KeyError:
            raise KeyError(
                f"no simulated cluster {name!r}; have {', '.join(self.clusters)}"
            ) from None

    def __iter__(self) -> Iterator[SimCluster]:
        return iter(self.clusters.values())

    def __len__(self) -> int:
        return len(self.clusters)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every cluster's recorded requests, in arrival order."""
        out = [r for c in self.clusters.values() for r in c.requests]
        out.sort(key=lambda r: r.seq)
        return out

    def clear_requests(self) -> None:
        for c in self.clusters.values():
            c.clear_requests()

    @property
    def faults(self) -> FaultsGroup:
        """Fault injection on every cluster at once (see :class:`Faults`)."""
        return FaultsGroup([c.faults for c in self.clusters.values()])

    def expire_tickets(self) -> None:
        """Invalidate every ticket of every cluster."""
        for c in self.clusters.values():
            c.expire_tickets()

    def __repr__(self) -> str:
        state = "running" if self._started else "stopped"
        urls = (
            ", ".join(f"{n}={c.url}" for n, c in self.clusters.items())
            if self._started
            else ", ".join(self.clusters)
        )
        return f"<Simulator {self.scenario!r} pve {self.pve_version} {state}: {urls}>"


# -- command line ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pvekit sim``."""
    parser.add_argument(
        "--scenario",
        choices=SCENARIO_NAMES,
        default="demo",
        help="what to simulate (default: demo)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=8006,
        help="first port; further clusters use the next ports (0 = random)",
    )
    parser.add_argument(
        "--https", action="store_true", help="serve TLS with a generated self-signed certificate"
    )
    parser.add_argument("--seed", type=int, default=0, help="scenario seed (default: 0)")
    parser.add_argument(
        "--pve-version",
        choices=PVE_VERSIONS,
        default="9.1",
        help="PVE version to imitate (default: 9.1)",
    )
    parser.add_argument("--nodes", type=int, default=None, help="large: number of nodes")
    parser.add_argument("--guests", type=int, default=None, help="large: number of guests")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; prints where each cluster listens and the demo logins."""
    kwargs: dict[str, Any] = {}
    if args.scenario == "large":
        if args.nodes is not None:
            kwargs["nodes"] = args.nodes
        if args.guests is not None:
            kwargs["guests"] = args.guests
    elif args.nodes is not None or args.guests is not None:
        print("pvekit sim: --nodes/--guests apply to --scenario large only", file=sys.stderr)
        return 2
    sim = Simulator(
        args.scenario,
        https=args.https,
        host=args.host,
        port=args.port,
        seed=args.seed,
        pve_version=args.pve_version,
        **kwargs,
    )
    try:
        sim.start()
    except OSError as exc:
        print(
            f"pvekit sim: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    print(describe(sim), flush=True)
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def describe(sim: Simulator) -> str:
    """Connection details of a running simulator (demo credentials are public test values)."""
    lines = [f"pvekit simulator: scenario {sim.scenario!r}, PVE {sim.pve_version}, seed {sim.seed}"]
    for name, c in sim.clusters.items():
        st = c.state
        lines.append(
            f"  {name:<6} {c.url}/api2/json   {len(st.nodes)} node(s), {len(st.guests)} guest(s)"
        )
        if c.fingerprint:
            lines.append(f"         fingerprint {c.fingerprint}")
    first = next(iter(sim.clusters.values()))
    lines += [
        "logins (public demo credentials, documented in docs/simulator.md):",
        f"  root@pam / {first.auth.users['root@pam'].password}",
        f"  auditor@pve / {first.auth.users['auditor@pve'].password}   (read only)",
        f"  tfa@pve / {first.auth.users['tfa@pve'].password} + TOTP",
    ]
    for name, c in sim.clusters.items():
        # Seeded test values, not real secrets: printed so token and TOTP logins are usable.
        lines.append(
            f"  {name}: API token root@pam!pvekit={c.auth.token_secret}  "
            f"TOTP secret {c.auth.totp_secret}"
        )
    if first.ca_file:
        lines.append(f"  CA file: {first.ca_file}")
    lines.append("press Ctrl-C to stop")
    return "\n".join(lines)
