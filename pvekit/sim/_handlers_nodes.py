"""Node-level endpoints the seed package and later pvetui call: node config, physical disks
and SMART, pending package updates, appliance templates (``aplinfo``) and storage downloads
(``download-url``, ``oci-registry-pull``).

Registered in :data:`pvekit.sim._handlers.ROUTES` on import (``_server`` imports this module).
Field names and JSON types follow the official schema's ``returns`` and what PVE's own code
builds: 0/1 ints for ``gpt``/``mounted``, ``osdid`` ``-1`` and ``osdid-list`` ``null`` for
disks without a Ceph OSD, ``wearout`` an int or ``"N/A"``, SMART attribute fields as the
strings PVE's smartctl parser takes from the text (``normalized`` a number), ``Package``/
``Version``... capitalised in ``apt/update``.

Everything is derived from the node name (stable across runs): each node has an NVMe system
disk, a SATA SSD and one to three HDDs; on the last node of a cluster with more than one
node the first HDD fails its SMART self-assessment, so outages of that kind can be shown.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._errors import SimHTTPError, param_error
from ._handlers import Ctx, route
from ._model import Volume, stable_key
from ._state import ClusterState, _truthy

__all__: list[str] = []

GB = 1000**3


@dataclass
class _NodeExtra:
    description: str = ""
    apt_refreshed: int = 0


_EXTRA: weakref.WeakKeyDictionary[ClusterState, dict[str, _NodeExtra]] = weakref.WeakKeyDictionary()


def _extra(st: ClusterState, node: str) -> _NodeExtra:
    per = _EXTRA.setdefault(st, {})
    return per.setdefault(node, _NodeExtra())


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


# -- node config ----------------------------------------------------------------------------


@route("GET", "/nodes/{node}/config")
def node_config(ctx: Ctx) -> Any:
    n = ctx.node()
    extra = _extra(ctx.state, n.name)
    out: dict[str, Any] = {"digest": _digest(f"{n.name}:{extra.description}")}
    if extra.description:
        out["description"] = extra.description
    prop = ctx.p("property")
    if prop and prop != "all":
        return {k: v for k, v in out.items() if k in (prop, "digest")}
    return out


@route("PUT", "/nodes/{node}/config")
def node_config_put(ctx: Ctx) -> Any:
    n = ctx.node()
    extra = _extra(ctx.state, n.name)
    digest = ctx.p("digest")
    if digest and digest != _digest(f"{n.name}:{extra.description}"):
        raise SimHTTPError(500, "detected modified configuration - file changed by other user?")
    if ctx.p("description") is not None:
        extra.description = str(ctx.p("description"))
    deleted = str(ctx.p("delete") or "")
    if "description" in re.split(r"[,;\s]+", deleted):
        extra.description = ""
    ctx.state.changed()
    return None


# -- disks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Disk:
    devpath: str
    kind: str  # nvme | ssd | hdd
    model: str
    serial: str
    size: int
    used: str
    wearout: int | str
    health: str
    rpm: int
    wwn: str
    partitions: tuple[tuple[str, int, str], ...] = field(default=())


def _disks(st: ClusterState, node: str) -> list[_Disk]:
    key = stable_key("disks", st.name, node)
    names = list(st.nodes)
    failing = len(names) > 1 and node == names[-1]
    serial = f"{key % 10**12:012d}"
    disks = [
        _Disk(
            "/dev/nvme0n1",
            "nvme",
            "Samsung SSD 980 PRO 1TB",
            f"S5GXNF0R{serial[:6]}",
            1_000_204_886_016,
            "LVM",
            100 - key % 7,
            "PASSED",
            0,
            f"eui.002538b{serial[:5]}",
            (
                ("/dev/nvme0n1p1", 1_031_168, "BIOS boot"),
                ("/dev/nvme0n1p2", 1_073_741_824, "EFI"),
                ("/dev/nvme0n1p3", 999_129_014_272, "LVM"),
            ),
        ),
        _Disk(
            "/dev/sda",
            "ssd",
            "INTEL SSDSC2KB480G8",
            f"PHYF{serial[2:10]}480BGN",
            480_103_981_056,
            "ZFS",
            99 - key % 5,
            "PASSED",
            0,
            f"0x55cd2e41{serial[:6]}",
        ),
    ]
    for i in range(1 + key % 3):
        letter = "bcd"[i]
        disks.append(
            _Disk(
                f"/dev/sd{letter}",
                "hdd",
                "ST4000NM0035-1V4107",
                f"ZC1{serial[i : i + 5]}",
                4_000_787_030_016,
                "ZFS",
                "N/A",
                "FAILED" if failing and i == 0 else "PASSED",
                7200,
                f"0x5000c500{serial[i : i + 6]}",
            )
        )
    return disks


def _disk_row(d: _Disk, skipsmart: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "devpath": d.devpath,
        "by_id_link": f"/dev/disk/by-id/{'nvme' if d.kind == 'nvme' else 'ata'}-"
        f"{d.model.replace(' ', '_')}_{d.serial}",
        "gpt": 1,
        "model": d.model,
        "mounted": 0,
        "osdid": -1,
        "osdid-list": None,
        "rpm": d.rpm,
        "serial": d.serial,
        "size": d.size,
        "type": d.kind,
        "used": d.used,
        "vendor": "ATA     " if d.kind != "nvme" else "unknown",
        "wwn": d.wwn,
    }
    if not skipsmart:
        row["health"] = d.health
        row["wearout"] = d.wearout
    return row


@route("GET", "/nodes/{node}/disks/list")
def disks_list(ctx: Ctx) -> Any:
    n = ctx.node()
    skipsmart = _truthy(ctx.p("skipsmart"))
    disks = _disks(ctx.state, n.name)
    if ctx.p("type") == "unused":
        return []  # every simulated disk carries LVM or ZFS
    if ctx.p("type") == "journal_disks":
        disks = [d for d in disks if d.kind in ("nvme", "ssd")]
    rows: list[dict[str, Any]] = []
    for d in disks:
        rows.append(_disk_row(d, skipsmart))
        if _truthy(ctx.p("include-partitions")):
            for path, size, used in d.partitions:
                rows.append(
                    {
                        "devpath": path,
                        "parent": d.devpath,
                        "gpt": 1,
                        "mounted": 1 if used == "EFI" else 0,
                        "osdid": -1,
                        "osdid-list": None,
                        "size": size,
                        "type": "partition",
                        "used": used,
                        "wwn": d.wwn,
                    }
                )
    return rows


_ATA_ATTRIBUTES = (
    ("1", "Raw_Read_Error_Rate", "POSR--", 6),
    ("5", "Reallocated_Sector_Ct", "PO--CK", 10),
    ("9", "Power_On_Hours", "-O--CK", 0),
    ("194", "Temperature_Celsius", "-O---K", 0),
    ("197", "Current_Pending_Sector", "-O--C-", 0),
)


@route("GET", "/nodes/{node}/disks/smart")
def disks_smart(ctx: Ctx) -> Any:
    n = ctx.node()
    path = str(ctx.p("disk"))
    if not path.startswith("/dev/"):
        raise param_error({"disk": f"value does not match the regex pattern: {path}"})
    disk = next((d for d in _disks(ctx.state, n.name) if d.devpath == path), None)
    if disk is None:
        raise SimHTTPError(500, f"no such disk '{path}'")
    out: dict[str, Any] = {"health": disk.health}
    if _truthy(ctx.p("healthonly")):
        return out
    if disk.kind == "nvme":
        out["type"] = "text"
        out["text"] = (
            "\nSMART/Health Information (NVMe Log 0x02)\n"
            "Critical Warning:                   0x00\n"
            "Temperature:                        38 Celsius\n"
            "Available Spare:                    100%\n"
            f"Percentage Used:                    {100 - int(disk.wearout)}%\n"
            "Power On Hours:                     8,113\n"
            "Media and Data Integrity Errors:    0\n"
        )
        return out
    failing = disk.health == "FAILED"
    attributes = []
    for aid, name, flags, threshold in _ATA_ATTRIBUTES:
        value = 100
        raw = "0"
        if name == "Reallocated_Sector_Ct" and failing:
            value, raw = 3, "3920"
        elif name == "Power_On_Hours":
            value, raw = 92, "8113"
        elif name == "Temperature_Celsius":
            value, raw = 64, "36 (Min/Max 19/45)"
        attributes.append(
            {
                "id": f"{aid:>3}",
                "name": name,
                "flags": flags,
                "value": str(value),
                "worst": str(value),
                "threshold": f"{threshold:03d}",
                "fail": "FAILING_NOW" if failing and value <= threshold else "-",
                "raw": raw,
                "normalized": value,
            }
        )
    out["type"] = "ata"
    out["attributes"] = attributes
    return out


# -- apt ------------------------------------------------------------------------------------


def _packages(ctx: Ctx, node: str) -> list[dict[str, Any]]:
    key = stable_key("apt", ctx.state.name, node)
    nine = ctx.major >= 9
    pkgs = [
        ("pve-manager", "9.1.1", "9.1.2") if nine else ("pve-manager", "8.4.14", "8.4.15"),
        ("proxmox-kernel-6.17", "6.17.2-1", "6.17.2-2")
        if nine
        else ("proxmox-kernel-6.8", "6.8.12-15", "6.8.12-16"),
        ("libpve-common-perl", "9.0.13", "9.0.14")
        if nine
        else ("libpve-common-perl", "8.3.4", "8.3.5"),
        ("openssl", "3.5.1-1", "3.5.1-1+deb13u1")
        if nine
        else ("openssl", "3.0.17-1~deb12u2", "3.0.17-1~deb12u3"),
        ("tzdata", "2025b-4", "2025b-4+deb13u1")
        if nine
        else ("tzdata", "2025b-0+deb12u1", "2025b-0+deb12u2"),
    ]
    count = 2 + key % (len(pkgs) - 1)
    rows = []
    for name, old, new in pkgs[:count]:
        proxmox = name.startswith(("pve-", "proxmox-", "libpve-"))
        rows.append(
            {
                "Arch": "all" if name in ("tzdata", "libpve-common-perl") else "amd64",
                "Description": f"{name} package (simulated changelog entry)",
                "OldVersion": old,
                "Origin": "Proxmox" if proxmox else "Debian",
                "Package": name,
                "Priority": "optional" if proxmox else "important",
                "Section": "admin" if proxmox else "utils",
                "Title": f"{name}: update to {new}",
                "Version": new,
            }
        )
    return rows


@route("GET", "/nodes/{node}/apt/update")
def apt_update_list(ctx: Ctx) -> Any:
    n = ctx.node()
    return _packages(ctx, n.name)


@route("POST", "/nodes/{node}/apt/update")
def apt_update_refresh(ctx: Ctx) -> Any:
    n = ctx.node()
    st = ctx.state

    def done(_task: Any) -> str | None:
        _extra(st, n.name).apt_refreshed = int(st.clock.now())
        return None

    return st.start_task(
        n.name,
        "aptupdate",
        "",
        ctx.user,
        log=["starting apt-get update", "Reading package lists..."],
        on_done=done,
    ).upid


# -- appliance templates --------------------------------------------------------------------

_APPLIANCES = (
    ("system", "debian-13-standard", "13.1-2", "debian-13", "Debian 13 (standard)", 136_314_880),
    ("system", "debian-12-standard", "12.12-1", "debian-12", "Debian 12 (standard)", 129_604_391),
    (
        "system",
        "ubuntu-24.04-standard",
        "24.04-2",
        "ubuntu-24.04",
        "Ubuntu 24.04 (standard)",
        148_860_928,
    ),
    (
        "system",
        "alpine-3.22-default",
        "20250617",
        "alpine-3.22",
        "Alpine Linux 3.22 (default)",
        3_172_860,
    ),
    (
        "turnkeylinux",
        "debian-12-turnkey-nextcloud",
        "18.2-1",
        "debian-12",
        "TurnKey Nextcloud",
        532_676_608,
    ),
)


def _appliance_rows() -> list[dict[str, Any]]:
    rows = []
    for section, package, version, os_name, headline, _size in _APPLIANCES:
        ext = "tar.xz" if package.startswith("alpine") else "tar.zst"
        template = f"{package}_{version}_amd64.{ext}"
        base = (
            "http://download.proxmox.com/images/system"
            if section == "system"
            else "https://releases.turnkeylinux.org/pve"
        )
        rows.append(
            {
                "architecture": "amd64",
                "description": f"{headline}: a minimal container template.",
                "headline": headline,
                "infopage": "https://pve.proxmox.com/wiki/Linux_Container#pct_supported_distributions",
                "location": f"{base}/{template}",
                "maintainer": "Proxmox Support Team <support@proxmox.com>",
                "os": os_name,
                "package": package,
                "section": section,
                "sha512sum": hashlib.sha512(template.encode()).hexdigest(),
                "source": base,
                "template": template,
                "type": "lxc",
                "version": version,
            }
        )
    return rows


@route("GET", "/nodes/{node}/aplinfo")
def aplinfo(ctx: Ctx) -> Any:
    ctx.node()
    return _appliance_rows()


def _content_storage(ctx: Ctx, node: str, storage: str, content: str) -> Any:
    sdef, use = ctx.state.storage(node, storage)
    if content not in sdef.content:
        raise SimHTTPError(500, f"storage '{storage}' does not support content-type '{content}'")
    if use.status != "available":
        raise SimHTTPError(500, f"storage '{storage}' is not online")
    return sdef


def _add_volume(ctx: Ctx, node: str, storage: str, content: str, name: str, size: int) -> Any:
    """A task whose success adds ``storage:content/name`` to the storage's content."""
    st = ctx.state
    sdef = _content_storage(ctx, node, storage, content)
    volid = f"{storage}:{content}/{name}"
    if any(v.volid == volid and (v.node in (None, node)) for v in st.volumes):
        raise SimHTTPError(500, f"refusing to override existing file '{name}'")
    fmt = name.rsplit(".", 1)[-1]
    if content == "vztmpl":
        fmt = {"zst": "tzst", "xz": "txz", "gz": "tgz", "tar": "tar"}.get(fmt, fmt)

    def done(_task: Any) -> str | None:
        st.volumes.append(
            Volume(
                volid=volid,
                storage=storage,
                content=content,
                fmt=fmt,
                size=size,
                ctime=int(st.clock.now()),
                node=None if sdef.shared else node,
            )
        )
        st.changed()
        return None

    return volid, done


@route("POST", "/nodes/{node}/aplinfo")
def aplinfo_download(ctx: Ctx) -> Any:
    n = ctx.node()
    template = str(ctx.p("template"))
    found = next((r for r in _appliance_rows() if r["template"] == template), None)
    if found is None:
        raise SimHTTPError(400, f"no such template '{template}'")
    size = next(a[5] for a in _APPLIANCES if template.startswith(a[1] + "_"))
    _volid, done = _add_volume(ctx, n.name, str(ctx.p("storage")), "vztmpl", template, size)
    return ctx.state.start_task(
        n.name,
        "download",
        template,
        ctx.user,
        log=[f"starting template download from: {found['location']}"],
        on_done=done,
    ).upid


# -- download-url, oci-registry-pull --------------------------------------------------------

_EXTENSIONS = {
    "iso": (".iso", ".img"),
    "vztmpl": (".tar.gz", ".tar.xz", ".tar.zst", ".tgz"),
    "import": (".ova", ".qcow2", ".raw", ".vmdk", ".img"),
}


def simulated_checksum(url: str, algorithm: str) -> str:
    """The checksum of what the simulator 'downloads' from ``url`` (a digest of the URL
    itself): tests pass it to see a verified download, anything else to see it fail."""
    return hashlib.new(algorithm, url.encode()).hexdigest()


@route("POST", "/nodes/{node}/storage/{storage}/download-url")
def download_url(ctx: Ctx) -> Any:
    n = ctx.node()
    storage = ctx.vars["storage"]
    url = str(ctx.p("url"))
    content = str(ctx.p("content"))
    filename = str(ctx.p("filename"))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise param_error({"url": f"invalid URL '{url}'"})
    if "/" in filename or not filename.endswith(_EXTENSIONS[content]):
        raise param_error({"filename": f"wrong file extension for content type '{content}'"})
    checksum, algorithm = ctx.p("checksum"), ctx.p("checksum-algorithm")
    if checksum and not algorithm:
        raise param_error(
            {"checksum-algorithm": "'checksum-algorithm' is required with 'checksum'"}
        )
    if algorithm and not checksum:
        raise param_error({"checksum": "'checksum' is required with 'checksum-algorithm'"})
    size = 100_000_000 + stable_key("download", url) % 3_000_000_000
    _volid, add = _add_volume(ctx, n.name, storage, content, filename, size)
    log = [f"downloading {url} to /var/lib/vz/template/{content}/{filename}"]

    def done(task: Any) -> str | None:
        if checksum and algorithm:
            got = simulated_checksum(url, str(algorithm))
            task.log.append(f"calculating checksum of '{filename}'...")
            if got.lower() != str(checksum).strip().lower():
                return f"checksum mismatch: got '{got}' != expect '{checksum}'"
            task.log.append("checksum verified")
        task.log.append(f"download of '{url}' to '{filename}' finished")
        return add(task)

    return ctx.state.start_task(n.name, "download", filename, ctx.user, log=log, on_done=done).upid


_OCI_REF = re.compile(r"^(?:[\w.-]+(?::\d+)?/)?[\w./-]+(?::[\w.-]+)?(?:@sha256:[0-9a-f]{64})?$")


@route("POST", "/nodes/{node}/storage/{storage}/oci-registry-pull")
def oci_registry_pull(ctx: Ctx) -> Any:
    n = ctx.node()
    reference = str(ctx.p("reference"))
    if not _OCI_REF.match(reference):
        raise param_error({"reference": f"invalid OCI reference '{reference}'"})
    filename = ctx.p("filename")
    if not filename:
        repo, _, tag = reference.rpartition("/")[2].partition(":")
        filename = f"{repo}_{tag or 'latest'}.tar"
    filename = str(filename)
    if not filename.endswith(".tar"):
        filename += ".tar"
    size = 5_000_000 + stable_key("oci", reference) % 500_000_000
    _volid, done = _add_volume(ctx, n.name, ctx.vars["storage"], "vztmpl", filename, size)
    return ctx.state.start_task(
        n.name,
        "download",
        filename,
        ctx.user,
        log=[f"pulling {reference}"],
        on_done=done,
    ).upid
