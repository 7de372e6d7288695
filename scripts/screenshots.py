"""Screenshots of the demo capacity report and of every notebook, executed, for a reviewer.

    python3 scripts/screenshots.py --out screenshots/            # report and notebooks
    python3 scripts/screenshots.py --out screenshots/ --no-notebooks

Writes into ``--out`` (created; ``screenshots/`` is git-ignored):

- ``report.html`` (the demo report, ``pvekit report --demo``), ``report-top.png`` (the first
  screen: summary and findings), ``report.png`` (the whole page, light), ``report-dark.png``
  (dark colour scheme), ``report-chart-NAME.png`` (each chart) and
  ``report-findings-open.png`` (the findings with every folded row opened);
- per notebook in ``notebooks/``: ``NAME.ipynb`` (executed against the embedded simulator, as
  tests/test_notebooks.py runs them), ``NAME.html`` (nbconvert), ``NAME.png`` (the whole page)
  and ``NAME-1.png``, ``NAME-2.png``... (the page in screens of 1800 px). Widgets stay blank:
  their JavaScript would come from a CDN, and the pages open offline.

Pages open in Debian's Chromium (``/usr/bin/chromium``, or ``--chromium``) through Playwright,
headless, with every request other than the local files refused: what is drawn is what opens
with no network. Nothing downloads a browser.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the browser settings the browser tests use

from _browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

WIDTH = 1280


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_report(out: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    import pvekit
    from pvekit import report

    group = pvekit.demo()
    try:
        rep = report.capacity(group, "month", progress=lambda m: _say(f"  {m}"))
    finally:
        group.close()
    path = out / "report.html"
    rep.to_html(path)
    _say(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return path


def execute_notebook(path: Path, out: Path, timeout: int) -> Path:
    """Run a notebook top to bottom in a fresh kernel (its own demo simulator) and write
    the executed copy and its HTML."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    env_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"] = env_path  # the kernel inherits it: this tree's pvekit
    os.environ["MPLBACKEND"] = "agg"
    # figures as HTML with plotly.js inline too (not only the JSON mimetype nbconvert cannot
    # draw), so the converted page shows the charts with no network
    os.environ["PLOTLY_RENDERER"] = "plotly_mimetype+notebook"
    for var in ("PVEKIT_GROUP", "PVEKIT_PROFILE"):
        os.environ.pop(var, None)  # the notebooks fall back to pvekit.demo()
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=True,  # a screenshot of the error is what a reviewer needs to see
    ).execute()
    nbformat.write(nb, out / path.name)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    html_path = out / f"{path.stem}.html"
    html_path.write_text(body, encoding="utf-8")
    errors = sum(
        1
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    )
    _say(f"wrote {html_path}" + (f" ({errors} cells with errors)" if errors else ""))
    return html_path


def _offline_page(browser: Any, scheme: str = "light") -> tuple[Any, Any, list[str]]:
    context = browser.new_context(
        viewport={"width": WIDTH, "height": 900}, color_scheme=scheme, device_scale_factor=1
    )
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(("file://", "data:", "about:"))
            else route.abort()
        ),
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page, errors


_CHARTS_DRAWN = (
    "() => [...document.querySelectorAll('.plotly-graph-div')]"
    ".every(d => d.querySelector('svg.main-svg'))"
)


def shoot_report(browser: Any, html: Path, out: Path) -> list[Path]:
    shots = []
    context, page, errors = _offline_page(browser)
    page.goto(html.as_uri(), wait_until="load")
    page.wait_for_function(_CHARTS_DRAWN, timeout=60_000)
    page.wait_for_timeout(500)  # let the last relayout settle
    shots.append(out / "report-top.png")
    page.screenshot(path=str(shots[-1]))
    shots.append(out / "report.png")
    page.screenshot(path=str(shots[-1]), full_page=True)
    for section in page.query_selector_all("section.chart"):
        # one picture per chart, at the size a reader sees it
        name = section.get_attribute("id")
        shots.append(out / f"report-chart-{name}.png")
        section.query_selector(".plotly-graph-div").screenshot(path=str(shots[-1]))
    page.eval_on_selector_all("details.group", "ds => ds.forEach(d => d.open = true)")
    shots.append(out / "report-findings-open.png")
    page.locator("#findings").scroll_into_view_if_needed()
    page.locator("table.findings").screenshot(path=str(shots[-1]))
    context.close()
    context, page, dark_errors = _offline_page(browser, "dark")
    page.goto(html.as_uri(), wait_until="load")
    page.wait_for_function(_CHARTS_DRAWN, timeout=60_000)
    page.wait_for_timeout(500)
    shots.append(out / "report-dark.png")
    page.screenshot(path=str(shots[-1]), full_page=True)
    context.close()
    for e in errors + dark_errors:
        _say(f"  JavaScript error in the report: {e}")
    return shots


TILE = 1800  # a tall page is also cut into screens a reviewer can read at full size


def shoot_page(browser: Any, html: Path, png: Path) -> list[Path]:
    context, page, _ = _offline_page(browser)
    page.goto(html.as_uri(), wait_until="load")
    # plotly figures and report iframes draw after load
    page.wait_for_timeout(3000)
    page.screenshot(path=str(png), full_page=True)
    shots = [png]
    height = int(page.evaluate("() => document.documentElement.scrollHeight"))
    if height > TILE:
        for i, top in enumerate(range(0, height, TILE), start=1):
            tile = png.with_name(f"{png.stem}-{i}.png")
            clip = {"x": 0, "y": top, "width": WIDTH, "height": min(TILE, height - top)}
            page.screenshot(path=str(tile), full_page=True, clip=clip)
            shots.append(tile)
    context.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", default="screenshots", help="output folder (default: screenshots)")
    parser.add_argument("--chromium", default=CHROMIUM, help="Chromium executable")
    parser.add_argument("--no-report", action="store_true", help="skip the report")
    parser.add_argument("--no-notebooks", action="store_true", help="skip the notebooks")
    parser.add_argument(
        "--notebook-timeout", type=int, default=240, help="seconds per notebook cell (default 240)"
    )
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        _say(f"no Chromium at {args.chromium}: apt-get install -y chromium, or pass --chromium")
        return 1
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pages: list[tuple[Path, Path]] = []
    report_html = None
    if not args.no_report:
        _say("building the demo report ...")
        report_html = build_report(out)
    if not args.no_notebooks:
        for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
            _say(f"executing {nb.name} ...")
            html = execute_notebook(nb, out, args.notebook_timeout)
            pages.append((html, out / f"{nb.stem}.png"))
    from playwright.sync_api import sync_playwright

    written: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            if report_html is not None:
                written += shoot_report(browser, report_html, out)
            for html, png in pages:
                written += shoot_page(browser, html, png)
        finally:
            browser.close()
    for path in written:
        _say(f"wrote {path}")
    _say(f"{len(written)} screenshots in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
