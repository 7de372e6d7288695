"""Every ```python example in the README and docs/ runs, as altair does with its gallery.

Blocks of one file run in order in one namespace, so later examples may use earlier names.
A block that needs a real Proxmox server (a host name, a config file of the reader's) is fenced
as ```python no-run; everything else runs against the embedded simulator through
``pvekit.demo()``. Each file runs in a temporary working directory, so examples that write
files (``report.to_html("capacity.html")``) leave nothing behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```python[ \t]*(?P<info>[^\n]*)\n(?P<code>.*?)^```", re.M | re.S)


def python_blocks(text: str) -> list[str]:
    """The runnable ```python blocks of a Markdown text, in order."""
    return [m["code"] for m in _FENCE.finditer(text) if "no-run" not in m["info"]]


def test_block_extraction_skips_no_run() -> None:
    text = "```python\na = 1\n```\n```python no-run\nboom()\n```\n```bash\nls\n```\n"
    assert python_blocks(text) == ["a = 1\n"]


@pytest.mark.parametrize(
    "doc", [d for d in DOCS if python_blocks(d.read_text())], ids=lambda p: p.name
)
def test_examples_run(doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{doc.stem}"}
    try:
        for i, block in enumerate(python_blocks(doc.read_text())):
            code = compile(block, f"{doc.name}[block {i + 1}]", "exec")
            exec(code, namespace)
    finally:
        # Examples open demo groups and clusters; close whatever they left open.
        for value in namespace.values():
            close = getattr(value, "close", None)
            if callable(close) and type(value).__module__.startswith("pvekit"):
                close()
