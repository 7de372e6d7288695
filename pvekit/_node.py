"""A handle on one node of a cluster: ``cluster.node("pve1")``.

Node-level reads (status, config, physical disks and SMART, pending updates, storage content,
the appliance index, the node's own guest lists) and the node-level actions that start a
task (refreshing the package index, downloading to a storage, pulling an OCI image, creating
a VM or a container). Tabular answers are DataFrames whose columns are documented in
:data:`pvekit.frames.COLUMNS`; actions return a :class:`~pvekit.Task`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from . import frames
from ._errors import APIError, InvalidInputError, NotImplementedByServerError, ParameterError
from ._format import parse_vmid
from ._guest import (
    _DNS_NAME_RE,
    _flag,
    _node_name,
    _positive_int,
    _schema_check,
    _storage_id,
)
from ._tasks import Task

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._cluster import Cluster
    from ._guest import VNCProxy

__all__ = ["Node"]

CHECKSUM_ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
DOWNLOAD_CONTENT = ("iso", "vztmpl", "import")
_EXTENSIONS = {
    "iso": (".iso", ".img"),
    "vztmpl": (".tar.gz", ".tar.xz", ".tar.zst", ".tgz"),
    "import": (".ova", ".qcow2", ".raw", ".vmdk", ".img"),
}
_FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_DIGEST_LENGTH = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
_BRIDGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")
_OCI_RE = re.compile(r"^(?:[\w.-]+(?::\d+)?/)?[\w./-]+(?::[\w.-]+)?(?:@sha256:[0-9a-f]{64})?$")
_CONTENT_TYPES = ("iso", "vztmpl", "images", "rootdir", "backup", "import", "snippets")


def _path(*segments: Any) -> str:
    return "/" + "/".join(quote(str(s), safe="") for s in segments)


class Node:
    """One node of a cluster (build with ``cluster.node("pve1")``; no request until used)."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self.name = _node_name(name)

    @property
    def profile(self) -> str:
        return str(getattr(self.cluster, "profile", ""))

    @property
    def path(self) -> str:
        """``/nodes/{node}``: the API path of this node."""
        return _path("nodes", self.name)

    def __repr__(self) -> str:
        return f"<Node {self.name} profile={self.profile!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and (other.profile, other.name) == (
            self.profile,
            self.name,
        )

    def __hash__(self) -> int:
        return hash((self.profile, self.name))

    # -- reads ----------------------------------------------------------------------------

    def _get(
        self, suffix: str, params: Mapping[str, Any] | None = None, fresh: bool = False
    ) -> Any:
        return self.cluster.get(self.path + suffix, params, fresh=fresh)

    def status(self, fresh: bool = False) -> dict[str, Any]:
        """``/nodes/{node}/status`` as Proxmox sends it, plus flat keys the seed's ``Node``
        has: ``cpu_model``, ``sockets``, ``cores`` (physical, per socket), ``cpus``
        (threads), ``pve_version`` and ``kernel``."""
        body = self._get("/status", fresh=fresh)
        out = dict(body) if isinstance(body, Mapping) else {}
        info = out.get("cpuinfo") if isinstance(out.get("cpuinfo"), Mapping) else {}
        assert isinstance(info, Mapping)
        out["cpu_model"] = info.get("model")
        out["sockets"] = frames._int(info.get("sockets"))
        out["cores"] = frames._int(info.get("cores"))
        out["cpus"] = frames._int(info.get("cpus"))
        out["pve_version"] = frames._pve_version(out.get("pveversion"))
        out["kernel"] = frames._kernel(out)
        return out

    def config(self, fresh: bool = False) -> dict[str, Any]:
        """The node's config (``/nodes/{node}/config``: description, wakeonlan, ACME...)."""
        body = self._get("/config", fresh=fresh)
        return dict(body) if isinstance(body, Mapping) else {}

    def disks(
        self, include_partitions: bool = False, skipsmart: bool = False, *, fresh: bool = False
    ) -> pd.DataFrame:
        """Physical disks (``/nodes/{node}/disks/list``) as a frame (``COLUMNS["disks"]``).
        ``skipsmart=True`` skips the SMART health (faster; ``health``/``wearout`` null)."""
        _flag(include_partitions, "include_partitions")
        _flag(skipsmart, "skipsmart")
        params = {
            "include-partitions": include_partitions or None,
            "skipsmart": skipsmart or None,
        }
        return frames.disks_frame(self.profile, self.name, self._get("/disks/list", params, fresh))

    def smart(self, disk: str, health_only: bool = False) -> dict[str, Any]:
        """SMART data of ``disk`` (``/dev/sda``): ``health`` (PASSED, FAILED...), ``type``
        (``ata``, or ``text`` for NVMe), ``attributes`` (a ``smart`` frame, empty for NVMe
        and with ``health_only``) and ``text`` (smartctl's report, NVMe)."""
        if not isinstance(disk, str) or not re.match(r"^/dev/[\w/.-]+$", disk):
            raise InvalidInputError(f"invalid disk {disk!r}: expected a device path like /dev/sda")
        _flag(health_only, "health_only")
        body = self._get("/disks/smart", {"disk": disk, "healthonly": health_only or None}, True)
        body = dict(body) if isinstance(body, Mapping) else {}
        attributes = body.get("attributes") if isinstance(body.get("attributes"), list) else []
        return {
            "disk": disk,
            "health": body.get("health"),
            "type": body.get("type"),
            "attributes": frames.smart_frame(self.profile, self.name, disk, attributes),
            "text": body.get("text"),
        }

    def updates(self, *, fresh: bool = False) -> pd.DataFrame:
        """Packages with a pending update (``/nodes/{node}/apt/update``; ``COLUMNS["updates"]``).
        The list is as fresh as the node's last ``apt-get update`` (:meth:`refresh_updates`)."""
        return frames.updates_frame(self.profile, self.name, self._get("/apt/update", None, fresh))

    def guests(self, *, fresh: bool = False) -> pd.DataFrame:
        """The guests of this node from its own lists (``/nodes/{node}/qemu`` and ``/lxc``),
        as a ``guests`` frame: the way to the inventory when ``/cluster/resources`` is
        degraded (the seed's recovery path). ``pool``, ``ha_state`` and ``template`` of QEMU
        rows may be missing there."""
        rows = []
        for gtype in ("qemu", "lxc"):
            listed = self._get(f"/{gtype}", None, fresh)
            for row in listed or []:
                if isinstance(row, Mapping):
                    rows.append({**row, "type": gtype, "node": self.name})
        return frames.guests_frame(self.profile, rows)

    def content(
        self,
        storage: str,
        content: str | None = None,
        vmid: int | str | None = None,
        *,
        fresh: bool = False,
    ) -> pd.DataFrame:
        """Volumes of ``storage`` on this node, of every content type (``COLUMNS["content"]``);
        ``content`` (``iso``, ``vztmpl``, ``images``, ``rootdir``, ``backup``, ``import``,
        ``snippets``) and ``vmid`` narrow it."""
        _storage_id(storage)
        if content is not None and content not in _CONTENT_TYPES:
            raise InvalidInputError(
                f"invalid content={content!r}: expected one of {', '.join(_CONTENT_TYPES)}"
            )
        params = {"content": content, "vmid": None if vmid is None else parse_vmid(vmid)}
        body = self._get(f"/storage/{quote(storage, safe='')}/content", params, fresh)
        return frames.content_frame(self.profile, self.name, storage, body)

    def appliances(self, *, fresh: bool = False) -> pd.DataFrame:
        """The appliance (container template) index (``/nodes/{node}/aplinfo``)."""
        return frames.appliances_frame(self.profile, self.name, self._get("/aplinfo", None, fresh))

    def refresh(self) -> dict[str, Any]:
        """Drop this node's cached reads (status, config, disks, updates, storage, network,
        its guest lists and task list; not the guests' own reads, not other nodes') and
        return its status read afresh (the seed's ``RefreshNodeData``)."""
        base = self.path
        self.cluster.invalidate(
            *(
                base + suffix
                for suffix in (
                    "/status",
                    "/config",
                    "/disks",
                    "/apt",
                    "/storage",
                    "/network",
                    "/dns",
                    "/hosts",
                    "/rrddata",
                    "/version",
                    "/aplinfo",
                )
            ),
            exact=[base + "/qemu", base + "/lxc", base + "/tasks", base],
        )
        return self.status(fresh=True)

    def shell_url(self) -> str:
        """The noVNC shell URL of this node, as the web UI opens it (no secret in it)."""
        from ._guest import node_shell_url

        return node_shell_url(self.cluster, self.name)

    def vnc_shell(self) -> VNCProxy:
        """Open a VNC shell on this node (``POST /nodes/{node}/vncshell``, websocket mode)."""
        from ._guest import node_vnc_shell

        return node_vnc_shell(self.cluster, self.name)

    # -- actions ---------------------------------------------------------------------------

    def _post(self, suffix: str, params: Mapping[str, Any]) -> Any:
        path = self.path + suffix
        _schema_check("POST", path, params, self.cluster)
        return self.cluster.post(path, params)

    def _task(self, upid: Any, what: str) -> Task:
        # What the action makes stale is the client's (the endpoint table), at send and end.
        if not isinstance(upid, str) or not upid.startswith("UPID:"):
            raise APIError(
                f"Proxmox did not answer {what} with a task id (got {upid!r})",
                profile=self.profile or None,
            )
        return Task(self.cluster, upid, description=f"{what} on {self.name}")

    def refresh_updates(self) -> Task:
        """Run ``apt-get update`` on the node (``POST /nodes/{node}/apt/update``)."""
        upid = self._post("/apt/update", {})
        return self._task(upid, "apt update")

    def delete_volume(self, volid: str, *, delay: int | None = None) -> Task | None:
        """Delete volume ``volid`` (``storage:path``, any content type; see :meth:`content`).
        Returns the removal task (``None`` when Proxmox removed it at once). ``delay`` waits
        that many seconds for the removal before it turns into a background task."""
        if not isinstance(volid, str) or ":" not in volid or volid.startswith(":"):
            raise InvalidInputError(f"invalid volid {volid!r}: expected 'storage:path'")
        storage = _storage_id(volid.split(":", 1)[0])
        if delay is not None:
            _positive_int(delay, "delay (seconds)", low=1, high=30)
        path = f"{self.path}/storage/{quote(storage, safe='')}/content/{quote(volid, safe='')}"
        params = {"delay": delay}
        _schema_check("DELETE", path, params, self.cluster)
        upid = self.cluster.delete(path, params)
        if upid is None:
            return None
        return self._task(upid, f"delete {volid}")

    def download_url(
        self,
        storage: str,
        url: str,
        filename: str,
        content: str = "iso",
        checksum: str | None = None,
        checksum_algorithm: str | None = None,
        verify_certificates: bool = True,
    ) -> Task:
        """Download ``url`` to ``storage`` as ``filename`` (``content`` ``iso``, ``vztmpl`` or
        ``import``; the extension must suit it). With ``checksum`` and ``checksum_algorithm``
        (md5, sha1, sha224, sha256, sha384, sha512) Proxmox verifies the file and the task
        fails on a mismatch. The volume appears when the task ends."""
        _storage_id(storage)
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInputError(f"invalid url {url!r}: expected an http(s) URL")
        if content not in DOWNLOAD_CONTENT:
            raise InvalidInputError(
                f"invalid content={content!r}: expected one of {', '.join(DOWNLOAD_CONTENT)}"
            )
        if not isinstance(filename, str) or not _FILENAME_RE.match(filename):
            raise InvalidInputError(f"invalid filename {filename!r}: a plain file name")
        if not filename.lower().endswith(_EXTENSIONS[content]):
            raise InvalidInputError(
                f"filename {filename!r} does not suit content {content!r} "
                f"(expected {', '.join(_EXTENSIONS[content])})"
            )
        if (checksum is None) != (checksum_algorithm is None):
            raise InvalidInputError("checksum and checksum_algorithm go together: give both")
        if checksum_algorithm is not None:
            if checksum_algorithm not in CHECKSUM_ALGORITHMS:
                raise InvalidInputError(
                    f"invalid checksum_algorithm={checksum_algorithm!r}: expected one of "
                    + ", ".join(CHECKSUM_ALGORITHMS)
                )
            want = _DIGEST_LENGTH[checksum_algorithm]
            if (
                not isinstance(checksum, str)
                or not _HEX_RE.match(checksum)
                or len(checksum) != want
            ):
                raise InvalidInputError(
                    f"invalid checksum {checksum!r}: expected {want} hex digits for "
                    f"{checksum_algorithm}"
                )
        _flag(verify_certificates, "verify_certificates")
        params = {
            "url": url,
            "filename": filename,
            "content": content,
            "checksum": checksum,
            "checksum-algorithm": checksum_algorithm,
            "verify-certificates": None if verify_certificates else False,
        }
        upid = self._post(f"/storage/{quote(storage, safe='')}/download-url", params)
        return self._task(upid, f"download {filename}")

    def _major(self) -> int:
        version = self.cluster.get("/version")
        text = str((version or {}).get("version") or (version or {}).get("release") or "")
        try:
            return int(text.split(".", 1)[0])
        except ValueError:
            return 0

    def pull_oci(self, storage: str, reference: str, filename: str | None = None) -> Task:
        """Pull an OCI image (``docker.io/library/nginx:latest``) to ``storage`` as a
        container template (``oci-registry-pull``, Proxmox VE 9 and later: on 8.x this raises
        :class:`~pvekit.NotImplementedByServerError` before any request is sent)."""
        _storage_id(storage)
        if not isinstance(reference, str) or not _OCI_RE.match(reference):
            raise InvalidInputError(
                f"invalid OCI reference {reference!r}: expected registry/name[:tag][@digest]"
            )
        if filename is not None and (
            not isinstance(filename, str) or not _FILENAME_RE.match(filename)
        ):
            raise InvalidInputError(f"invalid filename {filename!r}: a plain file name")
        major = self._major()
        if major < 9:
            raise NotImplementedByServerError(
                f"pulling OCI images needs Proxmox VE 9 or later; this cluster runs "
                f"{major or 'an unknown version'}.x",
                profile=self.profile or None,
            )
        params = {"reference": reference, "filename": filename}
        upid = self._post(f"/storage/{quote(storage, safe='')}/oci-registry-pull", params)
        return self._task(upid, f"pull {reference}")

    def download_appliance(self, storage: str, template: str) -> Task:
        """Download appliance ``template`` (see :meth:`appliances`) to ``storage``."""
        _storage_id(storage)
        if not isinstance(template, str) or not _FILENAME_RE.match(template):
            raise InvalidInputError(f"invalid template {template!r}: a template file name")
        upid = self._post("/aplinfo", {"storage": storage, "template": template})
        return self._task(upid, f"download {template}")

    # -- creating guests ---------------------------------------------------------------------

    def _vmid(self, vmid: int | str | None) -> int:
        if vmid is None:
            return int(self.cluster.get("/cluster/nextid", fresh=True))
        number = parse_vmid(vmid)
        try:
            self.cluster.get("/cluster/nextid", {"vmid": number}, fresh=True)
        except ParameterError:
            raise InvalidInputError(
                f"VMID {number} is already in use", profile=self.profile or None
            ) from None
        return number

    def _created(self, upid: Any, gtype: str, vmid: int) -> Task:
        task = self._task(upid, f"create {gtype} {vmid}")
        task.newid = vmid
        return task

    def create_vm(
        self,
        name: str,
        *,
        vmid: int | str | None = None,
        memory: int = 2048,
        cores: int = 2,
        sockets: int = 1,
        disk_storage: str = "local-lvm",
        disk_size: int = 32,
        iso: str | None = None,
        import_from: str | None = None,
        bridge: str = "vmbr0",
        start: bool = False,
    ) -> Task:
        """Create a QEMU VM here (``POST /nodes/{node}/qemu``) with the seed's defaults:
        2048 MiB, 2 cores, 1 socket, ``ostype=l26``, a ``disk_size`` GiB ``scsi0`` on
        ``disk_storage`` (or a disk imported from ``import_from``), ``net0`` virtio on
        ``bridge``, an ``iso`` volume as CD-ROM (then booting from it first). ``vmid``
        defaults to the next free one (``/cluster/nextid``); the task's ``newid`` is it."""
        if not isinstance(name, str) or not _DNS_NAME_RE.fullmatch(name):
            raise InvalidInputError(f"invalid VM name {name!r}: expected a DNS name")
        _positive_int(memory, "memory (MiB)", low=16)
        _positive_int(cores, "cores", low=1, high=8192)
        _positive_int(sockets, "sockets", low=1, high=4)
        _storage_id(disk_storage)
        if import_from is None:
            _positive_int(disk_size, "disk_size (GiB)", low=1)
        elif not isinstance(import_from, str) or ":" not in import_from:
            raise InvalidInputError(f"invalid import_from {import_from!r}: expected a volid")
        if iso is not None and (not isinstance(iso, str) or ":iso/" not in iso):
            raise InvalidInputError(f"invalid iso {iso!r}: expected 'storage:iso/file.iso'")
        if not isinstance(bridge, str) or not _BRIDGE_RE.match(bridge):
            raise InvalidInputError(f"invalid bridge {bridge!r}")
        _flag(start, "start")
        number = self._vmid(vmid)
        params: dict[str, Any] = {
            "vmid": number,
            "name": name,
            "memory": str(memory),
            "cores": cores,
            "sockets": sockets,
            "ostype": "l26",
            "net0": f"virtio,bridge={bridge}",
            "scsi0": f"{disk_storage}:0,import-from={import_from}"
            if import_from
            else f"{disk_storage}:{disk_size}",
            "start": start or None,
        }
        if iso:
            params["ide2"] = f"{iso},media=cdrom"
            params["boot"] = "order=ide2;scsi0;net0"
        elif import_from:
            params["boot"] = "order=scsi0;net0"
        upid = self._post("/qemu", params)
        return self._created(upid, "qemu", number)

    def create_container(
        self,
        hostname: str,
        ostemplate: str,
        *,
        vmid: int | str | None = None,
        memory: int = 512,
        swap: int = 512,
        cores: int = 1,
        disk_storage: str = "local-lvm",
        disk_size: int = 8,
        bridge: str = "vmbr0",
        ip: str = "dhcp",
        password: str | None = None,
        ssh_public_keys: str | None = None,
        unprivileged: bool = True,
        start: bool = False,
    ) -> Task:
        """Create an LXC container here (``POST /nodes/{node}/lxc``) from ``ostemplate``
        (``local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst``): 512 MiB, 512 MiB swap,
        1 core, an ``disk_size`` GiB rootfs on ``disk_storage``, ``eth0`` on ``bridge`` with
        ``ip`` (``dhcp``, or ``10.0.0.5/24``), unprivileged. ``password`` or
        ``ssh_public_keys`` set root's login. The task's ``newid`` is the new VMID."""
        if not isinstance(hostname, str) or not _DNS_NAME_RE.fullmatch(hostname):
            raise InvalidInputError(f"invalid hostname {hostname!r}: expected a DNS name")
        if not isinstance(ostemplate, str) or ":" not in ostemplate:
            raise InvalidInputError(
                f"invalid ostemplate {ostemplate!r}: expected 'storage:vztmpl/file'"
            )
        _positive_int(memory, "memory (MiB)", low=16)
        _positive_int(swap, "swap (MiB)", low=0)
        _positive_int(cores, "cores", low=1, high=8192)
        _storage_id(disk_storage)
        _positive_int(disk_size, "disk_size (GiB)", low=1)
        if not isinstance(bridge, str) or not _BRIDGE_RE.match(bridge):
            raise InvalidInputError(f"invalid bridge {bridge!r}")
        if not isinstance(ip, str) or not (
            ip in ("dhcp", "manual") or re.match(r"^[\d.]+/\d+$", ip)
        ):
            raise InvalidInputError(f"invalid ip {ip!r}: 'dhcp', 'manual' or an address/prefix")
        if password is not None and (not isinstance(password, str) or len(password) < 5):
            raise InvalidInputError("password must be a string of at least 5 characters")
        _flag(unprivileged, "unprivileged")
        _flag(start, "start")
        number = self._vmid(vmid)
        params: dict[str, Any] = {
            "vmid": number,
            "hostname": hostname,
            "ostemplate": ostemplate,
            "memory": memory,
            "swap": swap,
            "cores": cores,
            "rootfs": f"{disk_storage}:{disk_size}",
            "net0": f"name=eth0,bridge={bridge},ip={ip}",
            "unprivileged": unprivileged,
            "password": password,
            "ssh-public-keys": ssh_public_keys,
            "start": start or None,
        }
        upid = self._post("/lxc", params)
        return self._created(upid, "lxc", number)
