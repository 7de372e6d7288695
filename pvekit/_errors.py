"""The one exception tree of pvekit.

Every error pvekit raises on purpose is a :class:`PVEError`. The tree::

    PVEError
    ├── ConfigError              bad or missing profile/group/config file, unusable secret
    ├── InvalidInputError        bad argument caught before any request (also a ValueError)
    │   ├── InvalidVMIDError     a VMID that is not a positive integer
    │   ├── ConfigStringError    a Proxmox config string (net0, scsi0, rootfs...) that does
    │   │   │                    not parse; the message quotes it
    │   │   └── InvalidSizeError a size that is not a number with an optional K/M/G/T/P suffix
    │   └── GuestStateError      the guest's state does not allow the action (checked before
    │                            it is sent: deleting a running guest, migrating to its node)
    ├── TransportError           the request did not get an HTTP answer
    │   ├── TimeoutError         connect or read timeout (also the builtin TimeoutError)
    │   ├── TLSError             certificate verification or fingerprint pin failed
    │   └── ConnectionError      refused, reset, DNS, unreachable cluster
    ├── APIError                 Proxmox answered with an HTTP error
    │   ├── AuthenticationError  401: bad credentials, expired ticket, "No ticket"
    │   │   └── TwoFactorRequiredError  login needs a second factor and none was given
    │   ├── PermissionDeniedError      403 "Permission check failed"
    │   ├── NotFoundError        404, or "does not exist" / unknown node, guest, storage
    │   ├── ParameterError       400 with Proxmox's per-parameter messages in ``.errors``
    │   ├── NotImplementedByServerError  501: method/path unknown to this PVE version
    │   ├── NodeUnreachableError 595: the call was proxied to a node that is down
    │   └── ServerError          any other 5xx
    ├── TaskError                a Proxmox task did not end well
    │   ├── TaskFailedError      ended with an exit status other than OK / WARNINGS
    │   └── TaskTimeoutError     still running when the wait gave up (``.task`` is intact)
    ├── GuestAgentError          the QEMU guest agent answered with an error inside HTTP 200
    │   └── AgentExecTimeoutError  an agent command still ran when the wait gave up (``.pid``;
    │                              also the builtin TimeoutError)
    ├── ExportError              a static image export failed (kaleido or Chromium missing or
    │                            broken)
    ├── HistoryError             a history store cannot be read or written as asked
    │   └── StoreFormatError     written by a newer pvekit, or not a pvekit history store
    ├── PlanInvalidatedError     a planning.Plan no longer holds (the cluster changed), or
    │                            was applied already: nothing of it was sent
    └── AmbiguousGuestError      a VMID exists in several clusters of a group

Messages say what was asked (method and path), of which profile, and what Proxmox answered.
They never contain a password, ticket, CSRF token or token secret: callers pass only paths and
Proxmox's own reason phrases, and :func:`redact` is applied to every message as a last guard.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ._tasks import Task

__all__ = [
    "APIError",
    "AgentExecTimeoutError",
    "AmbiguousGuestError",
    "AuthenticationError",
    "ConfigError",
    "ConfigStringError",
    "ConnectionError",
    "ExportError",
    "GuestAgentError",
    "GuestStateError",
    "HistoryError",
    "InvalidInputError",
    "InvalidSizeError",
    "InvalidVMIDError",
    "NodeUnreachableError",
    "NotFoundError",
    "NotImplementedByServerError",
    "PVEError",
    "ParameterError",
    "PermissionDeniedError",
    "PlanInvalidatedError",
    "ServerError",
    "StoreFormatError",
    "TLSError",
    "TaskError",
    "TaskFailedError",
    "TaskTimeoutError",
    "TimeoutError",
    "TransportError",
    "TwoFactorRequiredError",
    "clean_text",
    "error_for_status",
    "redact",
]

# Patterns of secrets that may travel in strings pvekit handles. Order matters: the token
# header pattern must run before the generic ticket pattern.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(PVEAPIToken=[^=\s]+=)[^\s&\"',;]+"), r"\1***"),
    (re.compile(r"PVE(?:VNC)?:[^\s\"';&]*::[A-Za-z0-9+/=]+"), "PVE:***"),
    (re.compile(r"(PVEAuthCookie=)[^\s;\"']+"), r"\1***"),
    (re.compile(r"(?i)(CSRFPreventionToken[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"), r"\1***"),
    (
        re.compile(
            r"(?i)((?:password|token_value|token_secret|secret|otp)[\"']?\s*[:=]\s*[\"']?)"
            r"[^\s\"',;&]+"
        ),
        r"\1***",
    ),
)


# ANSI/VT escape sequences (CSI, OSC, DCS/PM/APC strings, two-byte escapes) a hostile server
# may put in a reason phrase or a message to repaint, retitle or query a user's terminal.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI ... final byte
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\|\Z)"  # OSC/DCS/SOS/PM/APC ... BEL or ST
    r"|\x1b[@-Z\\-~]?"  # other two-byte escapes (or a lone ESC)
    r"|\x9b[0-?]*[ -/]*[@-~]",  # 8-bit CSI
    re.DOTALL,
)
# What remains that a terminal or a log reader would act on: C0/C1 controls other than
# newline and tab, DEL, and the bidirectional overrides that reorder displayed text.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """``text`` with terminal escape sequences removed and other controls shown as escapes.

    Applied to every message, reason and log tail an error carries, since they quote what a
    server said; the text stays readable (``\\x07`` instead of a bell).
    """
    if text.isprintable():
        return text
    text = _ESCAPES.sub("", text)
    return _CONTROLS.sub(lambda m: ascii(m.group())[1:-1], text)


def redact(text: str) -> str:
    """Replace anything that looks like a Proxmox secret in ``text`` with ``***``."""
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


class PVEError(Exception):
    """Base of every error pvekit raises on purpose.

    Attributes are optional context: ``profile`` (which configured cluster), ``method`` and
    ``path`` (what was asked), ``status`` (HTTP status, if any) and ``reason`` (what Proxmox
    said). ``str(err)`` joins them into one readable sentence.
    """

    def __init__(
        self,
        message: str,
        *,
        profile: str | None = None,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        self.message = clean_text(redact(message))
        self.profile = profile
        self.method = method
        self.path = clean_text(path) if path else path
        self.status = status
        self.reason = clean_text(redact(reason)) if reason else reason
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.method or self.path:
            where.append(" ".join(p for p in (self.method, self.path) if p))
        if self.profile:
            where.append(f"profile {self.profile!r}")
        prefix = f"[{'; '.join(where)}] " if where else ""
        return prefix + self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable across process pools despite keyword-only context.
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[PVEError], message: str, state: dict[str, Any]) -> PVEError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ConfigError(PVEError):
    """A profile, group or config file is missing, malformed or unusable."""


class InvalidInputError(PVEError, ValueError):
    """An argument was rejected before any request was sent."""


class ConfigStringError(InvalidInputError):
    """A Proxmox configuration string could not be parsed; the message quotes it."""


class InvalidSizeError(ConfigStringError):
    """A size string is not a number with an optional K/M/G/T/P suffix."""


class GuestStateError(InvalidInputError):
    """The guest is not in a state that allows the action (checked before it is sent).

    Examples: deleting a running guest without ``stop_first=True``, migrating a guest to the
    node it is on, restoring a backup over a running guest.
    """


class InvalidVMIDError(InvalidInputError):
    """A VMID is not a positive integer (Proxmox allows 100..999999999)."""


class TransportError(PVEError):
    """The request did not get an HTTP answer (timeout, TLS, connection)."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """Connecting or reading took longer than the configured timeout."""


class TLSError(TransportError):
    """Certificate verification failed, or the server's fingerprint is not the pinned one."""


class ConnectionError(TransportError, builtins.ConnectionError):
    """The cluster could not be reached: refused, reset, DNS failure, dropped connection."""


class APIError(PVEError):
    """Proxmox answered with an HTTP error status.

    ``status`` is the HTTP status, ``reason`` Proxmox's reason phrase (where it puts its
    message), ``errors`` the per-parameter messages of a 400, ``body`` the parsed JSON body.
    """

    def __init__(
        self,
        message: str,
        *,
        errors: Mapping[str, str] | None = None,
        body: Any = None,
        **context: Any,
    ) -> None:
        self.errors: dict[str, str] = {
            clean_text(str(k)): clean_text(redact(str(v))) for k, v in (errors or {}).items()
        }
        self.body = body
        super().__init__(message, **context)


class AuthenticationError(APIError):
    """401: the credentials were refused, or the ticket expired and could not be renewed."""


class TwoFactorRequiredError(AuthenticationError):
    """The login needs a second factor (``NeedTFA``); pass ``otp=`` or an ``otp`` callback."""


class PermissionDeniedError(APIError):
    """403: the identity lacks the privilege ("Permission check failed")."""


class NotFoundError(APIError):
    """The node, guest, storage, snapshot, volume or path does not exist."""


class ParameterError(APIError):
    """400: Proxmox rejected parameters; ``errors`` maps each parameter to its message."""

    def __str__(self) -> str:
        base = super().__str__()
        if self.errors:
            detail = "; ".join(f"{k}: {v.strip()}" for k, v in sorted(self.errors.items()))
            return f"{base} ({detail})"
        return base


class NotImplementedByServerError(APIError):
    """501: the server does not know this method and path (older PVE, or a typo)."""


class NodeUnreachableError(APIError):
    """595: Proxmox could not proxy the call to the node (offline, no route)."""


class ServerError(APIError):
    """Any other 5xx answer, with Proxmox's message from the reason phrase."""


class TaskError(PVEError):
    """Base of task outcomes that are not a success. ``task`` is the :class:`~pvekit.Task`."""

    def __init__(self, message: str, *, task: Task | None = None, **context: Any) -> None:
        self.task = task
        super().__init__(message, **context)


class TaskFailedError(TaskError):
    """The task ended with an error. ``exitstatus`` and ``log_tail`` (last lines) say why."""

    def __init__(
        self,
        message: str,
        *,
        exitstatus: str | None = None,
        log_tail: list[str] | None = None,
        **context: Any,
    ) -> None:
        self.exitstatus = clean_text(exitstatus) if exitstatus else exitstatus
        self.log_tail = [clean_text(redact(line)) for line in (log_tail or [])]
        super().__init__(message, **context)


class TaskTimeoutError(TaskError, builtins.TimeoutError):
    """The wait gave up while the task is still running; ``task`` can be waited on again."""


class GuestAgentError(PVEError):
    """The QEMU guest agent reported an error (``class`` and ``desc``) inside an HTTP 200."""

    def __init__(self, message: str, *, agent_class: str | None = None, **context: Any) -> None:
        self.agent_class = agent_class
        super().__init__(message, **context)


class AgentExecTimeoutError(GuestAgentError, builtins.TimeoutError):
    """A command run by :meth:`pvekit.GuestAgent.exec` was still running when the wait gave up.

    ``pid`` is the agent's process id; the command keeps running inside the guest.
    """

    def __init__(self, message: str, *, pid: int, **context: Any) -> None:
        self.pid = pid
        super().__init__(message, agent_class="timeout", **context)


class ExportError(PVEError):
    """A static image export failed (kaleido or Chromium missing or broken)."""


class HistoryError(PVEError):
    """The history store (:mod:`pvekit.history`) cannot be read or written as asked."""


class StoreFormatError(HistoryError):
    """The store was written by a newer pvekit (or is not a pvekit history store)."""


class PlanInvalidatedError(PVEError):
    """A :class:`~pvekit.planning.Plan` was not applied: ``problems`` lists what changed."""

    def __init__(self, message: str, *, problems: list[str] | None = None, **context: Any) -> None:
        self.problems = list(problems or [])
        super().__init__(message, **context)


class AmbiguousGuestError(PVEError, LookupError):
    """A VMID matches guests in several clusters of a group; ``profiles`` names them."""

    def __init__(self, message: str, *, profiles: list[str] | None = None, **context: Any) -> None:
        self.profiles = list(profiles or [])
        super().__init__(message, **context)


_NOT_FOUND_HINTS = ("does not exist", "no such", "not found", "unknown node", "no such vm")


def error_for_status(
    status: int,
    reason: str,
    *,
    body: Any = None,
    profile: str | None = None,
    method: str | None = None,
    path: str | None = None,
) -> APIError:
    """Map an HTTP error answer from Proxmox to the matching :class:`APIError` subclass.

    Proxmox puts its message in the reason phrase; a 400 adds ``{"errors": {param: msg}}``.
    Some "not found" conditions arrive as 500 with "does not exist" in the reason.
    """
    errors: dict[str, str] = {}
    message = (reason or "").strip()
    if isinstance(body, Mapping):
        raw_errors = body.get("errors")
        if isinstance(raw_errors, Mapping):
            errors = {str(k): str(v) for k, v in raw_errors.items()}
        body_message = body.get("message")
        if isinstance(body_message, str) and body_message.strip() and not message:
            message = body_message.strip()
    if not message:
        message = f"HTTP {status}"
    lowered = message.lower()
    cls: type[APIError]
    if status == 400:
        cls = ParameterError
    elif status == 401:
        cls = AuthenticationError
    elif status == 403:
        cls = PermissionDeniedError
    elif status == 404 or (status == 500 and any(h in lowered for h in _NOT_FOUND_HINTS)):
        cls = NotFoundError
    elif status == 501:
        cls = NotImplementedByServerError
    elif status == 595:
        cls = NodeUnreachableError
    elif status >= 500:
        cls = ServerError
    else:
        cls = APIError
    text = f"Proxmox answered {status}: {message}"
    return cls(
        text,
        errors=errors,
        body=body,
        profile=profile,
        method=method,
        path=path,
        status=status,
        reason=reason,
    )
