"""pvekit.report: the HTML report from frames, from a source, from the CLI; PNG export."""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd
import pytest
from test_capacity import GIB, NOW, make_guests, make_nodes, make_storage, metrics_frame

from pvekit import InvalidInputError, PermissionDeniedError, report
from pvekit.cli import main as cli_main

CHARTS = [
    "overview",
    "node_utilisation",
    "overcommit",
    "headroom",
    "storage_pools",
    "storage_forecast",
    "memory_forecast",
    "guests",
]


def hand_frames() -> dict[str, pd.DataFrame]:
    nodes = make_nodes(
        [
            {"node": "pve1", "cpu": 0.5, "mem_used": 16 * GIB, "mem_total": 64 * GIB},
            {"node": "pve2", "cpu": 0.25, "mem_used": 8 * GIB, "mem_total": 32 * GIB},
            {
                "profile": "lab",
                "node": "lab1",
                "cores": 4,
                "mem_used": 4 * GIB,
                "mem_total": 16 * GIB,
            },
        ]
    )
    guests = make_guests(
        [
            {
                "vmid": 100,
                "name": "web<1>",
                "node": "pve1",
                "cores": 4,
                "mem_total": 8 * GIB,
                "lock": "backup",
            },
            {"vmid": 102, "name": "mail", "node": "pve2", "cores": 2, "mem_total": 16 * GIB},
            {"profile": "lab", "vmid": 100, "name": "test", "node": "lab1", "mem_total": 2 * GIB},
        ]
    )
    storage = make_storage(
        [
            {"node": "pve1", "storage": "local", "used": 10 * GIB, "total": 100 * GIB},
            {
                "node": "pve1",
                "storage": "ceph",
                "shared": True,
                "used": 50 * GIB,
                "total": 100 * GIB,
            },
            {
                "node": "pve2",
                "storage": "ceph",
                "shared": True,
                "used": 50 * GIB,
                "total": 100 * GIB,
            },
            {
                "profile": "lab",
                "node": "lab1",
                "storage": "local",
                "used": 90 * GIB,
                "total": 100 * GIB,
            },
        ]
    )
    metrics = metrics_frame(
        {
            "pve1/local": ("storage", "pve1", [float(10 + i) for i in range(30)], [100.0] * 30),
            "pve1/ceph": ("storage", "pve1", [float(20 + i) for i in range(30)], [100.0] * 30),
            "pve2/ceph": ("storage", "pve2", [float(20 + i) for i in range(30)], [100.0] * 30),
            "pve1": ("node", "pve1", [16.0 + i * 0.1 for i in range(30)], [64.0] * 30),
        }
    )
    return {"nodes": nodes, "guests": guests, "storage": storage, "metrics": metrics}


@pytest.fixture(scope="module")
def built() -> tuple[report.Report, str]:
    f = hand_frames()
    rep = report.from_frames(
        f["nodes"],
        f["guests"],
        f["storage"],
        metrics=f["metrics"],
        backups=pd.DataFrame({"profile": [], "vmid": [], "ctime": []}),
        now=NOW,
        warnings=["backups of lab: not read (test)"],
    )
    return rep, rep.to_html()


def test_report_contains_every_chart_and_finding(built) -> None:
    rep, page = built
    assert list(rep.figures) == CHARTS
    for name in CHARTS:
        assert f'id="chart-{name}"' in page, name
        # each chart also ships the table behind it
        assert f'<section class="chart" id="{name}">' in page
    assert len(rep.findings) >= 5
    for msg in rep.findings["message"]:
        assert html.escape(msg) in page, msg
    # guest names are escaped, not injected
    assert "web&lt;1&gt;" in page and "web<1>" not in page
    # the critical single-node finding and the forecast made it
    assert (rep.findings["category"] == "forecast").any()
    assert "Partial report: backups of lab: not read (test)" in page
    for label, value, _hint in rep._headlines():
        assert html.escape(value) in page, label


def test_report_is_self_contained(built) -> None:
    rep, page = built
    # plotly.js embedded exactly once, and no external script, stylesheet or CDN
    assert page.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=['\"]?https?:", page)
    assert page.count("Plotly.newPlot(") == len(CHARTS) + len(rep.planning.figures)


def test_shared_pool_drawn_once_in_storage_history(built) -> None:
    rep, page = built
    fig = rep.figures["storage_forecast"]
    names = [t.name for t in fig.data if t.showlegend is not False]
    # named as the pools chart and table name them: the shared pool is no node's view
    assert sorted(names) == ["prod/ceph", "prod/pve1/local"]
    fc = rep.analysis.forecast.query("kind == 'storage'")
    assert sorted(fc["target"]) == ["pve1/ceph", "pve1/local"]  # what rrddata was read
    assert sorted(fc["pool"]) == ["prod/ceph", "prod/pve1/local"]
    assert set(fc["pool"]) <= set(rep.analysis.storage_pools["pool"])
    assert list(rep.figures["storage_pools"].data[0].y).count("prod/ceph") == 1
    # the "first to fill" card names it so too
    first = {label: hint for label, _value, hint in rep._headlines()}["first to fill"]
    assert first == "storage prod/ceph reaches 90 %"
    assert "pve1/ceph" not in page  # no node's view of the shared pool anywhere on the page
    assert "(shared)" not in page


def test_summary_and_repr(built) -> None:
    rep, _ = built
    s = rep.summary()
    assert s.loc["clusters", "value"] == "2"
    assert s.loc["nodes online", "value"] == "3 / 3"
    assert s.loc["memory used", "value"] == "25 %"  # 28 of 112 GiB
    assert "critical" in repr(rep) and "8 charts" in repr(rep)
    frag = rep._repr_html_()
    assert frag.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in frag
    assert "&lt;!DOCTYPE html&gt;" in frag


def test_to_html_writes_file(tmp_path, built) -> None:
    rep, _ = built
    out = tmp_path / "r.html"
    assert rep.to_html(out) == out.read_text(encoding="utf-8")
    with pytest.raises(InvalidInputError, match="does not exist"):
        rep.to_html(tmp_path / "missing" / "r.html")


def test_plotlyjs_cdn_and_directory(tmp_path, built, capsys) -> None:
    rep, inline = built
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    cdn = rep.to_html(plotlyjs="cdn")
    assert "plotly.js v" not in cdn and len(cdn) < len(inline) / 5
    scripts = re.findall(r"<script[^>]+src='([^']+)'", cdn)
    assert scripts == [f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"]
    assert cdn.count("Plotly.newPlot(") == len(CHARTS) + len(rep.planning.figures)
    out = tmp_path / "pub" / "a.html"
    out.parent.mkdir()
    page = rep.to_html(out, plotlyjs="directory")
    assert re.findall(r"<script[^>]+src='([^']+)'", page) == ["plotly.min.js"]
    assert (out.parent / "plotly.min.js").read_text(encoding="utf-8") == get_plotlyjs()
    with pytest.raises(InvalidInputError, match="give a path"):
        rep.to_html(plotlyjs="directory")
    with pytest.raises(InvalidInputError, match="plotlyjs must be one of inline, cdn, directory"):
        rep.to_html(plotlyjs="local")


def test_cli_plotlyjs_directory(tmp_path, capsys, monkeypatch, built) -> None:
    # the command calls the capacity() of its own module (pvekit/report/_cli.py)
    monkeypatch.setattr("pvekit.report._cli.capacity", lambda *a, **k: built[0])
    out = tmp_path / "r.html"
    assert cli_main(["report", "--demo", "--output", str(out), "--plotlyjs", "directory"]) == 0
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    assert out.stat().st_size < 1_000_000
    assert "and " + str(tmp_path / "plotly.min.js") in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["report", "--demo", "--output", str(out), "--plotlyjs", "web"])


class FakeSource:
    """Duck-typed Cluster: serves hand-built frames and records calls."""

    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.f = hand_frames()
        self.fail = fail or {}
        self.calls: list[tuple[str, Any]] = []

    def _get(self, name: str, df: pd.DataFrame) -> pd.DataFrame:
        self.calls.append((name, None))
        if name in self.fail:
            raise self.fail[name]
        return df

    def nodes(self) -> pd.DataFrame:
        return self._get("nodes", self.f["nodes"])

    def guests(self, details: bool = False) -> pd.DataFrame:
        self.calls.append(("guests.details", details))
        return self._get("guests", self.f["guests"])

    def storage(self) -> pd.DataFrame:
        return self._get("storage", self.f["storage"])

    def backups(self) -> pd.DataFrame:
        return self._get("backups", pd.DataFrame({"profile": [], "vmid": [], "ctime": []}))

    def snapshots(self) -> pd.DataFrame:
        return self._get(
            "snapshots",
            pd.DataFrame({"profile": [], "node": [], "vmid": [], "name": [], "snaptime": []}),
        )

    def summary(self) -> pd.DataFrame:
        return self._get(
            "summary", pd.DataFrame({"profile": ["prod", "lab"], "quorate": [True, True]})
        )

    def metrics(
        self, kind: str, targets: Any = None, timeframe: str = "day", cf: str = "AVERAGE"
    ) -> pd.DataFrame:
        self.calls.append((f"metrics.{kind}", (targets, timeframe)))
        m = self.f["metrics"]
        return self._get(f"metrics.{kind}", m[m["kind"] == kind])

    # The rest of pvekit._source.Inventory, which capacity() checks at the door. The report
    # reads none of these from a source it cannot plan for: a call fails the test.
    profiles = ["prod", "lab"]
    clusters: dict[str, Any] = {}

    def close(self) -> None:
        pass

    def guest(self, vmid: Any, profile: Any = None) -> Any:
        raise AssertionError("the report does not open guest handles")

    def tasks(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        raise AssertionError("the report reads tasks only through the planning input")

    def ha_rules(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        raise AssertionError("the report reads HA rules only through the planning input")


def test_capacity_reads_source_with_progress_and_tolerates_optional_failures() -> None:
    src = FakeSource(
        fail={"backups": PermissionDeniedError("Permission check failed", profile="prod")}
    )
    lines: list[str] = []
    rep = report.capacity(src, "month", progress=lines.append)
    assert ("guests.details", True) in src.calls
    assert ("metrics.node", (None, "month")) in src.calls
    # right-sizing reads the running guests' metrics by VMID
    assert ("metrics.guest", ([100, 102], "month")) in src.calls
    assert any("backups: skipped" in line for line in lines)
    assert any(w.startswith("backups: not read") for w in rep.warnings)
    assert lines[-1].startswith("report built in")
    assert len(rep.figures) == len(CHARTS)
    with pytest.raises(PermissionDeniedError):
        report.capacity(FakeSource(fail={"nodes": PermissionDeniedError("no")}))
    with pytest.raises(InvalidInputError, match="timeframe"):
        report.capacity(src, "fortnight")
    with pytest.raises(InvalidInputError, match="Cluster or Group"):
        report.capacity(object())


def test_png_export(tmp_path, built) -> None:
    rep, _ = built
    # one figure keeps this quick; the report writes all of them the same way
    small = report.Report(
        rep.title,
        rep.timeframe,
        rep.generated,
        rep.frames,
        rep.analysis,
        {"overview": rep.figures["overview"]},
    )
    paths = small.write_png(tmp_path / "png")
    assert [p.name for p in paths] == ["overview.png"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the image got a white background; the report's own figure stays transparent
    assert small.figures["overview"].layout.paper_bgcolor is None
    with pytest.raises(report.ExportError, match="Chromium"):
        small.write_png(tmp_path / "png2", browser="/nonexistent/chromium")


def test_cli_report_demo(tmp_path, capsys, monkeypatch) -> None:
    """The README's first command, end to end; the Report it built is checked too."""
    built: list[report.Report] = []
    real = report.capacity

    def spy(*args: Any, **kwargs: Any) -> report.Report:
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr("pvekit.report._cli.capacity", spy)
    out = tmp_path / "report.html"
    assert cli_main(["report", "--demo", "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "starting the demo simulator" in err and f"wrote {out}" in err
    assert "reading guest metrics (month, " in err and "report built in" in err
    page = out.read_text(encoding="utf-8")
    for name in CHARTS:
        assert f'id="chart-{name}"' in page
    (rep,) = built
    assert rep.to_html() == page  # the file is the report, deterministically
    assert set(rep.profiles) == {"prod", "lab"}
    a = rep.analysis
    assert set(a.node_usage["profile"]) == {"prod", "lab"}
    # the demo has metrics for nodes and pools: forecasts exist for both kinds
    assert set(a.forecast["kind"]) == {"node", "storage"}
    assert (a.forecast["points"] > 10).all()
    # shared pools are counted once per cluster
    assert not a.storage_pools.duplicated(["profile", "storage", "node"]).any()
    # guest metrics are asked per cluster (VMIDs repeat across clusters): no gaps
    assert rep.warnings == []
    rs = a.rightsizing
    running = rs[
        rs["category"].isin(["cpu oversized", "memory oversized", "cpu pinned", "memory pinned"])
    ]
    assert len(running) and (running["basis"] == "period").all()
    for msg in rep.findings["message"]:
        assert html.escape(msg) in page
    # repeated findings are folded into one row each, with the list behind a <details>
    table = page[page.index('<table class="findings">') :]
    table = table[: table.index("</table>")]
    counts = [int(c) for c in re.findall(r'<tr data-count="(\d+)">', table)]
    assert sum(counts) == len(rep.findings) and len(counts) < len(rep.findings) / 2
    assert table.count('<details class="group">') == sum(c > 1 for c in counts)
    no_backup = rep.findings[rep.findings["message"].str.endswith("has no backup")]
    for profile, grp in no_backup.groupby("profile"):
        assert html.escape(f"{len(grp)} guests have no backup") in table, profile
    severities = re.findall(r'<td class="sev-(\w+)">', table)
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)


def test_cli_errors(tmp_path, capsys) -> None:
    code = cli_main(["report", "--demo", "--output", str(tmp_path / "no" / "r.html")])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["report", "--demo", "--group", "x", "--output", "r.html"])


def test_report_on_a_cluster_with_an_offline_node(fresh_sim) -> None:
    import pvekit

    fresh_sim["prod"].set_node_online("pve3", False)
    cluster = pvekit.connect(**fresh_sim["prod"].connect_kwargs(identity="root"), cache=False)
    lines: list[str] = []
    try:
        rep = report.capacity(cluster, "month", progress=lines.append)
    finally:
        cluster.close()
    a = rep.analysis
    # an ad-hoc connect(host=...) is named after its host (here the simulator's loopback port)
    assert rep.profiles == [cluster.profile]
    assert fresh_sim["prod"].host.startswith(cluster.profile)  # named after its host
    offline = a.findings[(a.findings.category == "node") & (a.findings.severity == "critical")]
    assert list(offline["object"]) == ["node pve3"]
    usage = a.node_usage.set_index("node")
    assert not usage.loc["pve3", "online"]
    # capacity counts the two online nodes only, and pve3 is no failover target
    assert a.cluster_usage.loc[0, "nodes_online"] == 2
    assert a.cluster_usage.loc[0, "cores"] == usage.loc[["pve1", "pve2"], "cores"].sum()
    room = a.headroom.set_index("node")
    assert pd.isna(room.loc["pve3", "fits"])
    assert room.loc["pve1", "mem_free_elsewhere"] == (
        usage.loc["pve2", "mem_total"] - usage.loc["pve2", "mem_used"]
    )
    assert "pve3" not in set(a.forecast.query("kind == 'node'")["target"])
    # what could not be read from the offline node is said, not silently dropped
    assert any("pve3" in w for w in rep.warnings)
    page = rep.to_html()
    assert "node pve3 is offline" in page
    assert "Partial report: " in page


class FakeGroup(FakeSource):
    """A duck-typed Group whose 'lab' cluster is down: frames hold 'prod' only and every read
    warns, the way pvekit.Group does."""

    profiles = ["prod", "lab"]

    def __init__(self) -> None:
        super().__init__()
        self.f = {k: v[v["profile"] == "prod"] for k, v in self.f.items()}
        self.guest_targets: dict[str, Any] = {}

    def _get(self, name: str, df: pd.DataFrame) -> pd.DataFrame:
        import warnings

        from pvekit._group import PartialResultWarning

        warnings.warn(
            PartialResultWarning(
                f"profile 'lab' (127.0.0.1:1) is missing from this {name} frame: "
                "[GET /cluster/resources; profile 'lab'] Proxmox answered 503: Service Unavailable",
                profile="lab",
                frame=name,
                reason="Proxmox answered 503: Service Unavailable",
            ),
            stacklevel=2,
        )
        return super()._get(name, df)

    def map(self, fn: Any, *, profiles: Any = None) -> dict[str, Any]:
        outer = self

        class One:
            profile = "prod"

            def metrics(self, kind: str, targets: Any = None, timeframe: str = "day") -> Any:
                outer.guest_targets[self.profile] = targets
                return pd.DataFrame(
                    columns=["profile", "kind", "target", "node", "time", "metric", "value"]
                )

        assert list(profiles) == ["prod"]  # only clusters with running guests are asked
        return {"prod": fn(One())}

    def status(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "profile": ["prod", "lab"],
                "host": ["a", "b"],
                "connected": [True, False],
                "state": ["connected", "failed"],
                "error": [None, "503 Service Unavailable"],
                "checked_at": [NOW, NOW],
            }
        )


def test_capacity_on_a_group_with_a_cluster_down() -> None:
    import warnings

    src = FakeGroup()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the report takes the warnings over, none escape
        rep = report.capacity(src, "month")
    assert rep.profiles == ["prod"]
    assert src.guest_targets == {"prod": [100, 102]}
    # one line for the missing cluster, not one per frame; and the status table's verdict
    assert rep.warnings[0].startswith("cluster lab is missing from nodes, guests, storage,")
    assert rep.warnings[0].endswith("Proxmox answered 503: Service Unavailable")
    assert sum("missing" in w for w in rep.warnings) == 1
    assert "cluster lab is not connected: 503 Service Unavailable" in rep.warnings
    page = rep.to_html()
    assert page.count("Partial report: ") == len(rep.warnings)
    assert "<h2>Connections</h2>" in page


class RewordedGroup(FakeGroup):
    """The same outage, warned in other words: the report reads the warning's fields."""

    def _get(self, name: str, df: pd.DataFrame) -> pd.DataFrame:
        import warnings

        from pvekit._group import PartialResultWarning

        warnings.warn(
            PartialResultWarning(
                f"{name}: cluster lab did not answer",
                profile="lab",
                frame=name,
                reason="Proxmox answered 503: Service Unavailable",
            ),
            stacklevel=2,
        )
        return FakeSource._get(self, name, df)


def test_missing_cluster_is_condensed_from_the_warning_fields_not_its_text() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = report.capacity(RewordedGroup(), "month")
    assert rep.warnings[0] == (
        "cluster lab is missing from nodes, guests, storage, backups, snapshots, summary, "
        "node metrics (month), storage metrics (month): "
        "Proxmox answered 503: Service Unavailable"
    )
    assert sum("missing" in w for w in rep.warnings) == 1


def test_partial_and_incomplete_warnings_carry_fields() -> None:
    from pvekit._cluster import IncompleteDataWarning
    from pvekit._group import PartialResultWarning

    w = PartialResultWarning("text", profile="lab", frame="nodes", reason="down")
    assert (str(w), w.profile, w.frame, w.reason) == ("text", "lab", "nodes", "down")
    i = IncompleteDataWarning("text", profile="prod", what="guest details", failures={"a": "b"})
    assert (i.profile, i.what, i.failures) == ("prod", "guest details", {"a": "b"})
    assert PartialResultWarning("old style").profile is None  # a plain message still works
