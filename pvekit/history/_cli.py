"""``pvekit collect``: one snapshot into a history store, or a loop until stopped."""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .._errors import InvalidInputError, PVEError

__all__ = ["add_arguments", "parse_every", "run", "run_loop"]

log = logging.getLogger("pvekit.collect")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> float:
    """``"1h"``, ``"30m"``, ``"90s"``, ``"1d"``, ``"0.5h"`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
    if not match:
        raise InvalidInputError(f"--every must be a duration like 1h, 30m, 90s or 1d, not {text!r}")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise InvalidInputError(f"--every must be more than zero, not {text!r}")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pvekit collect`` (called by :mod:`pvekit.cli`)."""
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--profile", "-p", help="a configured profile (default: the default one)")
    src.add_argument("--group", "-g", help="a configured group of clusters")
    src.add_argument("--demo", action="store_true", help="collect the embedded simulator's demo")
    parser.add_argument(
        "--store", "-s", required=True, help="history store: a folder or an fsspec URL (s3://...)"
    )
    parser.add_argument(
        "--every", metavar="DURATION", help="keep collecting every DURATION (1h, 30m, 1d)"
    )
    parser.add_argument(
        "--days",
        type=int,
        help="with --demo: build N days of simulated history (one snapshot a day)",
    )
    parser.add_argument(
        "--no-details", action="store_true", help="skip guest configs (no disks, networks)"
    )
    parser.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fsspec storage option (e.g. endpoint_url=...); prefer env vars for credentials",
    )


def _options(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--option must be KEY=VALUE, got {key or pair!r}=...")
        if key in ("endpoint_url", "region_name"):
            out.setdefault("client_kwargs", {})[key] = value
        else:
            out[key] = value
    return out


def run_loop(
    once: Callable[[], str], every: float, stop: threading.Event, *, max_runs: int | None = None
) -> int:
    """Call ``once`` every ``every`` seconds until ``stop`` is set; a failed run is logged and
    the loop goes on. Returns the number of failed runs."""
    failures = 0
    runs = 0
    while not stop.is_set():
        start = time.monotonic()
        runs += 1
        try:
            log.info("run %d: %s", runs, once())
        except PVEError as exc:
            failures += 1
            log.error("run %d failed: %s", runs, exc)
        except Exception as exc:  # a loop meant to run for months survives a bug in one run
            failures += 1
            log.error("run %d failed: %s: %s", runs, type(exc).__name__, exc)
        if max_runs is not None and runs >= max_runs:
            break
        stop.wait(max(0.0, every - (time.monotonic() - start)))
    return failures


def run(args: argparse.Namespace) -> int:
    """Run ``pvekit collect``."""
    import pvekit

    from ._store import Store

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s pvekit collect: %(message)s",
        stream=sys.stderr,
    )
    every = parse_every(args.every) if args.every else None
    if args.days is not None and not args.demo:
        raise InvalidInputError("--days builds simulated history: use it with --demo")
    if args.days is not None and every is not None:
        raise InvalidInputError("--days and --every do not go together")
    store = Store(args.store, **_options(args.option))
    if args.days is not None:
        t0 = time.perf_counter()
        log.info("building %d days of demo history into %s ...", args.days, store.location)
        group = pvekit.demo(history_days=args.days, history=args.store)
        group.close()
        info: dict[str, float] = group.history_build  # type: ignore[attr-defined]
        log.info(
            "stored %d daily snapshots in %.1f s (%.1f s collecting, %.1f s CPU in %d process(es))",
            args.days,
            time.perf_counter() - t0,
            info["collect_seconds"],
            info["cpu_seconds"],
            info["workers"],
        )
        return 0
    if args.demo:
        source: Any = pvekit.demo()
    elif args.group:
        source = pvekit.connect_group(args.group)
    else:
        source = pvekit.connect(args.profile)

    def once() -> str:
        start = time.perf_counter()
        sid = store.collect(source, details=not args.no_details)
        return f"snapshot {sid} stored in {store.location} in {time.perf_counter() - start:.1f} s"

    try:
        if every is None:
            log.info(once())
            return 0
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("%s received: stopping after this run", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info(
            "collecting every %s into %s (SIGTERM or Ctrl-C stops)", args.every, store.location
        )
        failures = run_loop(once, every, stop)
        log.info("stopped (%d failed run(s))", failures)
        return 0
    finally:
        source.close()
