"""pvekit: Proxmox VE clusters from Jupyter.

Connect to one cluster (:func:`connect`) or a group of clusters (:func:`connect_group`,
:class:`Group`), read inventory as pandas DataFrames, act on guests and follow their tasks,
analyse capacity, draw plotly charts, build an HTML report, and drive it all from ipywidgets
panels. :func:`demo` runs everything against the embedded Proxmox VE simulator.

Heavy modules (pandas, plotly, ipywidgets) are imported on first use, so ``import pvekit``
stays fast; every public name below is resolved lazily through :func:`__getattr__`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    AgentExecTimeoutError,
    AmbiguousGuestError,
    APIError,
    AuthenticationError,
    ConfigError,
    ConfigStringError,
    ConnectionError,
    ExportError,
    GuestAgentError,
    GuestStateError,
    HistoryError,
    InvalidInputError,
    InvalidSizeError,
    InvalidVMIDError,
    NodeUnreachableError,
    NotFoundError,
    NotImplementedByServerError,
    ParameterError,
    PermissionDeniedError,
    PlanInvalidatedError,
    PVEError,
    ServerError,
    StoreFormatError,
    TaskError,
    TaskFailedError,
    TaskTimeoutError,
    TimeoutError,
    TLSError,
    TransportError,
    TwoFactorRequiredError,
)

if TYPE_CHECKING:  # pragma: no cover
    from . import capacity, charts, frames, history, planning, report, sim, widgets
    from ._cluster import Cluster, IncompleteDataWarning
    from ._config import Profile, load_config
    from ._connect import connect, connect_group, demo
    from ._failover import FailoverEvent, FailoverGroup
    from ._format import (
        UPID,
        first_non_loopback_ip,
        format_bytes,
        format_uptime,
        parse_upid,
        parse_vmid,
        safe_bool,
        safe_float,
        safe_string,
    )
    from ._group import Group, PartialResultWarning
    from ._guest import ExecResult, Guest, GuestAgent, VNCProxy
    from ._node import Node
    from ._tasks import Task, TaskStatus

__version__ = "0.1.0"

# public name -> module that defines it (relative to this package)
_LAZY: dict[str, str] = {
    "connect": "._connect",
    "connect_group": "._connect",
    "demo": "._connect",
    "Cluster": "._cluster",
    "Group": "._group",
    "FailoverGroup": "._failover",
    "FailoverEvent": "._failover",
    "Guest": "._guest",
    "GuestAgent": "._guest",
    "ExecResult": "._guest",
    "VNCProxy": "._guest",
    "Node": "._node",
    "Task": "._tasks",
    "TaskStatus": "._tasks",
    "PartialResultWarning": "._group",
    "IncompleteDataWarning": "._cluster",
    "Profile": "._config",
    "load_config": "._config",
    "UPID": "._format",
    "parse_upid": "._format",
    "format_bytes": "._format",
    "format_uptime": "._format",
    "parse_vmid": "._format",
    "safe_string": "._format",
    "safe_float": "._format",
    "safe_bool": "._format",
    "first_non_loopback_ip": "._format",
}
_SUBMODULES = ("capacity", "charts", "frames", "history", "planning", "report", "sim", "widgets")

__all__ = [
    "UPID",
    "APIError",
    "AgentExecTimeoutError",
    "AmbiguousGuestError",
    "AuthenticationError",
    "Cluster",
    "ConfigError",
    "ConfigStringError",
    "ConnectionError",
    "ExecResult",
    "ExportError",
    "FailoverEvent",
    "FailoverGroup",
    "Group",
    "Guest",
    "GuestAgent",
    "GuestAgentError",
    "GuestStateError",
    "HistoryError",
    "IncompleteDataWarning",
    "InvalidInputError",
    "InvalidSizeError",
    "InvalidVMIDError",
    "Node",
    "NodeUnreachableError",
    "NotFoundError",
    "NotImplementedByServerError",
    "PVEError",
    "ParameterError",
    "PartialResultWarning",
    "PermissionDeniedError",
    "PlanInvalidatedError",
    "Profile",
    "ServerError",
    "StoreFormatError",
    "TLSError",
    "Task",
    "TaskError",
    "TaskFailedError",
    "TaskStatus",
    "TaskTimeoutError",
    "TimeoutError",
    "TransportError",
    "TwoFactorRequiredError",
    "VNCProxy",
    "__version__",
    "capacity",
    "charts",
    "connect",
    "connect_group",
    "demo",
    "first_non_loopback_ip",
    "format_bytes",
    "format_uptime",
    "frames",
    "history",
    "load_config",
    "parse_upid",
    "parse_vmid",
    "planning",
    "report",
    "safe_bool",
    "safe_float",
    "safe_string",
    "sim",
    "widgets",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'pvekit' has no attribute {name!r}")
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
