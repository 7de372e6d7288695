"""``cryptography`` is the simulator's HTTPS extra (``pvekit[sim]``), not a dependency of pvekit:
the client, the frames and the plain-HTTP demo work without it, and asking for an HTTPS
simulator without it says what to install."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Makes "import cryptography" fail in a child interpreter, as on a machine without it.
BLOCK = """
import sys
class _NoCryptography:
    def find_spec(self, name, path=None, target=None):
        if name == "cryptography" or name.startswith("cryptography."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NoCryptography())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cryptography_is_the_sim_extra_and_the_test_extra_keeps_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("[")[0].strip() for d in project["dependencies"]]
    assert "cryptography" not in names
    extras = project["optional-dependencies"]
    assert any(d.startswith("cryptography") for d in extras["sim"])
    assert any(d.startswith("cryptography") for d in extras["test"])  # .ci/run: .[test]


def test_client_and_plain_demo_work_without_cryptography() -> None:
    out = _run(
        "import pvekit\n"
        "from pvekit import report, capacity, charts, frames, planning, widgets\n"
        "g = pvekit.demo()\n"
        "try:\n"
        "    print(len(g.nodes(progress=False)))\n"
        "finally:\n"
        "    g.close()\n"
        "assert 'cryptography' not in sys.modules\n"
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip().splitlines()[-1]) > 0


@pytest.mark.parametrize(
    "code",
    [
        "from pvekit.sim import Simulator\nSimulator('demo', https=True)",
        "import pvekit\npvekit.demo(https=True)",
    ],
)
def test_https_simulator_without_cryptography_names_the_extra(code: str) -> None:
    out = _run(code)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:") and "pip install 'pvekit[sim]'" in last, out.stderr
