"""Execute every notebook in notebooks/ top to bottom against the embedded simulator.

Notebooks connect with ``pvekit.demo()`` unless ``PVEKIT_GROUP`` / ``PVEKIT_PROFILE`` is set;
the tests make sure neither is, so each kernel starts its own in-process simulator (a kernel
is a separate process: nothing of this test process reaches it except the environment). A
notebook fails the test on any error output, on a traceback in stderr, and on any secret in
its outputs. Committed notebooks must carry no outputs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
import yaml
from vcr_support import find_secrets

if TYPE_CHECKING:
    from pvekit.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 240


def _known_secrets() -> list[str]:
    from pvekit.sim import Simulator

    sim = Simulator("demo", seed=0)  # not started: only its deterministic credentials
    out: list[str] = []
    for cluster in sim.clusters.values():
        out += [u.password for u in cluster.auth.users.values()]
        out.append(cluster.auth.token_secret)
    return [s for s in out if s]


def _output_text(output: Any) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    return json.dumps(output.get("data", {}))


def test_notebooks_exist() -> None:
    assert any(p.name == "01-explore.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: commit notebooks without outputs"
            assert cell.execution_count is None


def _execute(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "agg")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
    )
    client.execute()
    return nb


def _check_outputs(path: Path, nb: Any, secrets: list[str]) -> str:
    """Fail on error outputs, tracebacks and secrets; return all output text."""
    texts = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            text = _output_text(output)
            where = f"{path.name} cell {index}"
            assert output.get("output_type") != "error", f"{where}: {text[-2000:]}"
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                assert "Traceback" not in text, f"{where}: {text[-2000:]}"
            assert find_secrets(text, secrets) == [], f"{where} shows a secret"
            texts.append(text)
    return "\n".join(texts)


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PVEKIT_GROUP", "PVEKIT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    nb = _execute(path, monkeypatch)
    _check_outputs(path, nb, _known_secrets())


@pytest.mark.notebook
def test_explore_notebook_with_a_configured_group(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The non-demo branch: a group from the config file, pointing at this process's
    simulator over loopback; the password reaches the kernel only as an env var."""
    kw = sim["prod"].connect_kwargs(identity="root")
    monkeypatch.setenv("PVEKIT_NB_PASSWORD", str(kw["password"]))
    profiles = {
        name: {
            "host": c.url,
            "user": "root@pam",
            "password_env": "PVEKIT_NB_PASSWORD",
            "cache": "memory",
        }
        for name, c in sim.clusters.items()
    }
    config = {"profiles": profiles, "groups": {"estate": list(profiles)}}
    path = Path(os.environ["PVEKIT_CONFIG"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    monkeypatch.delenv("PVEKIT_PROFILE", raising=False)
    monkeypatch.setenv("PVEKIT_GROUP", "estate")
    notebook = ROOT / "notebooks" / "01-explore.ipynb"
    sim["prod"].clear_requests()
    nb = _execute(notebook, monkeypatch)
    text = _check_outputs(notebook, nb, [*_known_secrets(), str(kw["password"])])
    assert "lab" in text and "prod" in text  # both profiles made it into the tables
    assert sim["prod"].requests, "the notebook did not talk to the configured simulator"
    assert any(r.path == "/cluster/resources" for r in sim["lab"].requests)
