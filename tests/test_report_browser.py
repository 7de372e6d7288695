"""The capacity report in a real browser: Debian's Chromium, headless, through Playwright.

Opens the demo report from disk with the network cut off, in light and dark colour schemes,
and checks that every chart draws (an SVG inside each plotly div), that nothing logged a
JavaScript error, and takes a screenshot. Then reads, from the page itself (the plotly data of
the drawn graphs and the page text), that every node series of the memory chart spans the
timeframe (gaps allowed, and drawn as gaps), that a shared pool has one name, and that the
findings table starts with the critical findings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser



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
    if not Path(CHROMIUM).exists():  # apt may still be installing it: a failure, not a skip
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
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
    base = [
        "chart-overview",
        "chart-node_utilisation",
        "chart-overcommit",
        "chart-headroom",
        "chart-storage_pools",
        "chart-storage_forecast",
        "chart-memory_forecast",
        "chart-guests",
    ]
    planning = {
        "chart-time_remaining",
        "chart-capacity_remaining",
        "chart-maintenance",
        "chart-reclaimable",
    }
    ids = [c[0] for c in charts]
    assert [i for i in ids if i in base] == base
    assert set(ids) - set(base) == planning and len(ids) == len(set(ids))
    assert ids[0] == "chart-time_remaining"  # time remaining sits at the top
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


@pytest.fixture(scope="module")
def page(report_file, browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith("file://") else route.abort()
        ),
    )
    p = context.new_page()
    p.goto(report_file.as_uri(), wait_until="load")
    p.wait_for_function(
        "() => [...document.querySelectorAll('.plotly-graph-div')]"
        ".every(d => d.querySelector('svg.main-svg'))",
        timeout=30_000,
    )
    yield p
    context.close()


# the series of a chart as plotly holds them in the page: name, x (ms since epoch), y
_SERIES = """(id) => document.getElementById(id).data
    .filter(t => t.mode === 'lines' && t.showlegend !== false)
    .map(t => ({name: t.name, connectgaps: t.connectgaps,
                x: Array.from(t.x, v => new Date(v).getTime()),
                y: Array.from(t.y, v => (v === null || v === undefined) ? null : Number(v))}))"""


def test_every_node_memory_series_spans_the_timeframe(page) -> None:
    series = page.evaluate(_SERIES, "chart-memory_forecast")
    names = sorted(s["name"] for s in series)
    assert names == ["lab/pve", "prod/pve1", "prod/pve2", "prod/pve3"]
    step = 12 * 3600 * 1000  # month rows are 12 h apart
    first = min(s["x"][0] for s in series)
    last = max(s["x"][-1] for s in series)
    assert last - first >= 68 * step  # the whole month of rows (70, the newest still empty)
    for s in series:
        # every node from the first row to the last, whenever it last rebooted
        assert s["x"][0] == first and s["x"][-1] == last, s["name"]
        assert s["connectgaps"] is False
        drawn = [y for y in s["y"] if y is not None]
        assert drawn and all(0 < y < 1 for y in drawn)
    # prod/pve2 was down for 36 hours: a gap (a null point), not a line across it
    pve2 = next(s for s in series if s["name"] == "prod/pve2")
    cut = pve2["y"].index(None)
    assert pve2["x"][cut + 1] - pve2["x"][cut - 1] >= 3 * step
    assert all(None not in s["y"] for s in series if s["name"] != "prod/pve2")


def test_a_shared_pool_has_one_name_everywhere(page) -> None:
    # every qualified name of ceph-vm in the drawn graphs (trace names, axis categories,
    # hover texts) and in the page's text (tables, findings, summary)
    names = page.evaluate(
        """() => {
          const found = new Set();
          const grab = (text) => {
            for (const m of String(text).matchAll(/[\\w.-]+(?:\\/[\\w.-]+)*\\/ceph-vm\\b/g)) {
              found.add(m[0]);
            }
          };
          for (const div of document.querySelectorAll('.plotly-graph-div')) {
            for (const t of div.data) {
              grab(t.name || '');
              for (const k of ['x', 'y', 'text', 'hovertext', 'customdata']) {
                if (t[k]) grab(JSON.stringify(Array.from(t[k])));
              }
            }
          }
          grab(document.body.innerText);
          return [...found];
        }"""
    )
    assert names == ["prod/ceph-vm"]
    pools = page.evaluate(
        "() => Array.from(document.getElementById('chart-storage_pools').data[0].y)"
    )
    forecast = page.evaluate(_SERIES, "chart-storage_forecast")
    assert "prod/ceph-vm" in pools and "prod/ceph-vm" in [s["name"] for s in forecast]


def test_findings_table_starts_with_the_critical_ones(page) -> None:
    rows = page.eval_on_selector_all(
        "table.findings tbody tr",
        "rs => rs.map(r => [r.cells[0].textContent, Number(r.dataset.count),"
        " r.querySelector('details') !== null])",
    )
    severities = [r[0] for r in rows]
    order = ["critical", "warning", "info"]
    assert severities[0] == "critical"
    assert severities == sorted(severities, key=order.index)
    card = page.inner_text(".card:has(.label:text-is('findings')) .hint")
    critical = int(card.split(" critical")[0])
    assert severities.count("critical") == critical >= 1  # all of them, at the top
    # repeated findings folded: far fewer rows than findings, each fold opens to its list
    total = int(page.inner_text(".card:has(.label:text-is('findings')) .value"))
    assert sum(r[1] for r in rows) == total and len(rows) < total / 2
    assert all(r[2] == (r[1] > 1) for r in rows)
    folded = page.locator("details.group").first
    assert not folded.evaluate("d => d.open")
    folded.locator("summary").click()
    assert folded.evaluate("d => d.open") and folded.locator("li").count() > 1
