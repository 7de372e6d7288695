"""Record the inventory cassettes in ``cassettes/`` from the embedded simulator.

Command (from the repository root)::

    python scripts/record_cassettes.py            # re-record every cassette
    python scripts/record_cassettes.py guests     # only the named ones

Each cassette holds the requests of one call of ``tests/vcr_support.CALLS`` on the demo
scenario's ``prod`` cluster (seed 0, PVE 9.1), made by a ``pvekit.connect(..., cache=False)``
client: vcrpy cannot see through a requests-cache session (vcrpy issue 881). Secrets are
scrubbed before anything is written (see ``tests/vcr_support.py``) and every file is checked
for leftovers afterwards; the script fails rather than keep a dirty cassette. Requests run
one at a time (``max_workers = 1``) so a cassette's order is stable.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from vcr_support import CALLS, CASSETTES, find_secrets, use_cassette  # noqa: E402

import pvekit  # noqa: E402
from pvekit.sim import Simulator  # noqa: E402


def record(names: list[str]) -> None:
    unknown = sorted(set(names) - set(CALLS))
    if unknown:
        raise SystemExit(f"unknown cassette(s) {unknown}; choose from {sorted(CALLS)}")
    CASSETTES.mkdir(exist_ok=True)
    with Simulator("demo", seed=0, pve_version="9.1") as sim:
        kwargs = dict(sim["prod"].connect_kwargs(identity="root"))
        kwargs.pop("profile", None)
        secrets = [str(kwargs["password"]), str(sim["prod"].auth.token_secret)]
        for name in names:
            path = CASSETTES / f"{name}.yaml"
            path.unlink(missing_ok=True)
            with use_cassette(name, record_mode="all"):
                cluster = pvekit.connect("prod", **kwargs, cache=False, check=False, retries=0)
                cluster.max_workers = 1
                CALLS[name](cluster)
                cluster.close()
            leaks = find_secrets(path.read_text(), secrets)
            if leaks:
                path.unlink()
                raise SystemExit(f"{path.name}: secrets survived scrubbing, cassette removed")
            print(f"recorded {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    record(sys.argv[1:] or list(CALLS))
