"""The capacity report in a real browser: Debian's Chromium, headless, through Playwright.

Opens the demo report from disk with the network cut off, in light and dark colour schemes,
and checks that every chart draws (an SVG inside each plotly div), that nothing logged a
JavaScript error, and takes a screenshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pvekit
    from pvekit import report

    group = pvekit.demo()
    try:
        rep = report.capacity(group, "month")
    finally:
        group.close()
    path = tmp_path_factory.mktemp("report") / "report.html"
    rep.to_html(path)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_report_renders_without_js_errors(report_file, browser, tmp_path) -> None:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900}, color_scheme="light"
    )
    # The file must not need the network: fail any request that is not the file itself.
    requests: list[str] = []

    def guard(route) -> None:  # type: ignore[no-untyped-def]
        requests.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report_file.as_uri(), wait_until="load")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.plotly-graph-div')]"
        ".every(d => d.querySelector('svg.main-svg'))",
        timeout=30_000,
    )
    charts = page.eval_on_selector_all(
        ".plotly-graph-div",
        "ds => ds.map(d => [d.id, d.querySelectorAll('svg.main-svg').length,"
        " d.querySelectorAll('.point, .trace, .slice').length])",
    )
    assert [c[0] for c in charts] == [
        "chart-overview",
        "chart-node_utilisation",
        "chart-overcommit",
        "chart-headroom",
        "chart-storage_pools",
        "chart-storage_forecast",
        "chart-memory_forecast",
        "chart-guests",
    ]
    for chart_id, svgs, marks in charts:
        assert svgs >= 1, chart_id
        assert marks > 0, f"{chart_id} drew no bars, lines or tiles"
    font = "d => d._fullLayout.font.color"
    assert page.eval_on_selector("#chart-overview", font) == "#6b7280"
    page.screenshot(path=str(tmp_path / "report-light.png"), full_page=True)
    # Switch the system theme to dark: the page re-themes the charts' text, and back.
    page.emulate_media(color_scheme="dark")
    page.wait_for_function(
        "() => document.querySelector('#chart-guests')._fullLayout.font.color === '#d1d5db'"
    )
    assert page.eval_on_selector("body", "b => getComputedStyle(b).backgroundColor") == (
        "rgb(17, 24, 39)"
    )
    shot = tmp_path / "report-dark.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    page.emulate_media(color_scheme="light")
    page.wait_for_function(
        "() => document.querySelector('#chart-overview')._fullLayout.font.color === '#6b7280'"
    )
    assert errors == []
    assert all(u.startswith("file://") for u in requests), requests
    context.close()
