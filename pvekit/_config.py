"""Connection profiles: the pvekit config file, pvetui's config file and ``PROXMOX_*`` env vars.

A :class:`Profile` says where a cluster is (``host``), who logs in (``user``, password or API
token), how TLS is checked and how requests behave (timeout, cache, retries). Profiles come
from ``~/.config/pvekit/config.yaml`` (``PVEKIT_CONFIG`` overrides the path), from pvetui's
``~/.config/pvetui/config.yml`` (``PVEKIT_PVETUI_CONFIG`` overrides), from ``PROXMOX_*``
environment variables (profile ``env``), or from :func:`pvekit.connect` arguments.

Secrets may be inline, read from an environment variable (``password_env``) or printed by a
command (``password_command``); they are resolved only when a login needs them and never
appear in a repr, log line or error message. See ``docs/client.md`` for the file format.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ConfigError
from ._format import parse_bool

__all__ = [
    "Config",
    "Profile",
    "Secret",
    "config_path",
    "load_config",
    "normalize_host",
    "pvetui_config_path",
]

DEFAULT_PORT = 8006
API_PATH = "/api2/json"
_COMMAND_TIMEOUT = 30.0


# --------------------------------------------------------------------------------------------
# Secrets


class Secret:
    """A secret value and where it comes from; the value is read only by :meth:`reveal`.

    Kinds: ``inline`` (a value), ``env`` (an environment variable read at login time),
    ``command`` (a command whose standard output is the secret; run once, then remembered)
    and ``encrypted`` (a SOPS ``ENC[...]`` or pvetui ``age1:`` value pvekit cannot decrypt).
    """

    __slots__ = ("_cached", "command", "encrypted", "env", "kind", "where")

    def __init__(
        self,
        *,
        value: str | None = None,
        env: str | None = None,
        command: str | list[str] | None = None,
        encrypted: str | None = None,
        where: str = "",
    ) -> None:
        given = [x is not None for x in (value, env, command, encrypted)]
        if sum(given) != 1:
            raise ValueError("a Secret has exactly one source")
        self._cached: str | None = value
        self.env = env
        self.command = command
        self.encrypted = encrypted
        self.where = where
        if value is not None:
            self.kind = "inline"
        elif env is not None:
            self.kind = "env"
        elif command is not None:
            self.kind = "command"
        else:
            self.kind = "encrypted"

    @classmethod
    def of(cls, value: str | Secret, where: str = "") -> Secret:
        """Wrap a plain string (recognising encrypted markers); pass a Secret through."""
        if isinstance(value, Secret):
            return value
        scheme = _encryption_scheme(value)
        if scheme:
            return cls(encrypted=scheme, where=where)
        return cls(value=value, where=where)

    def __repr__(self) -> str:
        if self.kind == "env":
            return f"<secret from ${self.env}>"
        if self.kind == "command":
            return "<secret from command>"
        if self.kind == "encrypted":
            return f"<secret {self.encrypted}-encrypted>"
        return "<secret>"

    __str__ = __repr__

    def reveal(self, *, fresh: bool = False) -> str:
        """The secret's value; a :class:`~pvekit.ConfigError` names the source if unusable.

        A command's output is remembered after the first run unless ``fresh=True`` (used for
        one-time codes, which change every time).
        """
        if self._cached is not None and not (fresh and self.kind == "command"):
            return self._cached
        if self.kind == "encrypted":
            raise ConfigError(
                f"{self.where} - the value is {self.encrypted}-encrypted and pvekit cannot "
                "decrypt it. Decrypt the file first, or point pvekit at a command that prints "
                'the value (e.g. password_command: "sops -d --extract '
                '\'[\\"profiles\\"][\\"NAME\\"][\\"password\\"]\' FILE") in '
                "~/.config/pvekit/config.yaml"
            )
        if self.kind == "env":
            assert self.env is not None
            value = os.environ.get(self.env)
            if value is None or value == "":
                raise ConfigError(f"{self.where} - environment variable ${self.env} is not set")
            return value
        assert self.command is not None
        value = _run_secret_command(self.command, self.where)
        self._cached = value
        return value


def _encryption_scheme(value: str) -> str | None:
    text = value.strip()
    if text.startswith("ENC[") and text.endswith("]"):
        return "SOPS"
    if text.startswith("age1:") or text.startswith("-----BEGIN AGE ENCRYPTED FILE-----"):
        return "age"
    return None


def _run_secret_command(command: str | list[str], where: str) -> str:
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if not argv:
        raise ConfigError(f"{where}: the command is empty")
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ConfigError(f"{where}: command {argv[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"{where}: command {argv[0]!r} did not finish within {_COMMAND_TIMEOUT:.0f} s"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: command {argv[0]!r} failed to start: {exc}") from None
    if proc.returncode != 0:
        # Its error output is not shown: a decryption tool or password manager may print
        # what it was handling (the secret, or part of it) there.
        said = " (its error output is not shown: run the command yourself to see it)"
        raise ConfigError(
            f"{where}: command {argv[0]!r} exited with status {proc.returncode}"
            + (said if proc.stderr.strip() else "")
        )
    value = proc.stdout.rstrip("\r\n")
    if not value.strip():
        raise ConfigError(f"{where}: command {argv[0]!r} printed nothing")
    return value


# --------------------------------------------------------------------------------------------
# Host and user normalisation

_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?")


def normalize_host(raw: str) -> tuple[str | None, str, str]:
    """Split a host given as ``pve1``, ``pve1:8006``, ``https://pve1:8006[/api2/json]``.

    Returns ``(scheme or None, "host:port", api_path)``; the default port is 8006 and the API
    path ``/api2/json`` (a reverse-proxy prefix such as ``/pve`` is kept in front of it).
    Raises :class:`ValueError` with a message that never repeats credentials.
    """
    if not isinstance(raw, str):
        raise ValueError(f"host must be a string, not {type(raw).__name__}")
    text = raw.strip()
    if not text:
        raise ValueError("host is empty")
    scheme: str | None = None
    rest = text
    if "://" in text:
        scheme, rest = text.split("://", 1)
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"host scheme {scheme!r} is not http or https")
    if "?" in rest or "#" in rest:
        raise ValueError("host must not contain a query string or fragment")
    hostpart, slash, path = rest.partition("/")
    if "@" in hostpart:
        raise ValueError("host must not contain credentials (user@host); use user= / password=")
    path = ("/" + path).rstrip("/") if slash else ""
    if path == "" or path == API_PATH:
        api_path = API_PATH
    elif path.endswith(API_PATH):
        api_path = path
    elif "/api2/" in path + "/":
        raise ValueError(f"host path {path!r} is not the JSON API path {API_PATH!r}")
    else:
        api_path = path + API_PATH
    port = DEFAULT_PORT
    if hostpart.startswith("["):
        end = hostpart.find("]")
        if end < 0:
            raise ValueError(f"host {hostpart!r} has an unclosed '['")
        name = hostpart[1:end]
        tail = hostpart[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise ValueError(f"host {hostpart!r} is malformed")
            port = _parse_port(tail[1:])
        _check_ipv6(name)
        name = f"[{name.lower()}]"
    elif hostpart.count(":") > 1:
        _check_ipv6(hostpart)
        name = f"[{hostpart.lower()}]"
    else:
        name, colon, port_text = hostpart.partition(":")
        if colon:
            port = _parse_port(port_text)
        if not name or not _HOSTNAME_RE.fullmatch(name):
            raise ValueError(f"host name {name!r} is not a valid host name or address")
        name = name.lower()
    return scheme, f"{name}:{port}", api_path


def _parse_port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"port {text!r} is not a number between 1 and 65535")
    return int(text)


def _check_ipv6(text: str) -> None:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid IPv6 address") from None


_USER_RE = re.compile(r"[^\s@!:]+@[A-Za-z][A-Za-z0-9._-]*")
_TOKEN_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")


def _split_token_id(text: str) -> tuple[str, str]:
    user, _, name = text.partition("!")
    return user, name


def _normalize_fingerprint(raw: str) -> str:
    hexdigits = raw.strip().replace(":", "").replace(" ", "")
    if hexdigits.lower().startswith("sha256"):
        hexdigits = hexdigits[6:].lstrip("=")
    if not re.fullmatch(r"[0-9A-Fa-f]{64}", hexdigits):
        raise ValueError(
            "fingerprint must be the SHA-256 fingerprint Proxmox shows "
            "(64 hex digits, optionally colon-separated)"
        )
    up = hexdigits.upper()
    return ":".join(up[i : i + 2] for i in range(0, 64, 2))


# --------------------------------------------------------------------------------------------
# Profile


@dataclass(frozen=True, repr=False)
class Profile:
    """Everything needed to talk to one cluster as one identity. Secrets stay hidden.

    ``host`` accepts ``pve1``, ``pve1:8006``, ``https://pve1:8006`` or
    ``https://pve1:8006/api2/json`` and is stored as ``"pve1:8006"``; ``http://`` is used only
    when given explicitly. ``user`` is ``name@realm`` (realm defaults to ``pam``). For API
    tokens give ``token_name`` (``name`` or ``user@realm!name``) and ``token_value``, or the
    whole ``PVEAPIToken=user@realm!name=secret`` string as ``token_value``.
    ``fingerprint`` pins the server certificate's SHA-256 fingerprint (checked before any
    credential is sent); ``ca_file`` trusts a CA bundle; ``verify_ssl=False`` disables checks.
    ``timeout`` is seconds (or ``(connect, read)``); ``cache`` is ``True`` (SQLite in the user
    cache dir), ``"memory"`` or ``False``; ``retries``/``backoff`` apply to reads only.
    ``timeout`` is also each request's total deadline (connect plus read for a pair), however
    slowly a server trickles its answer. ``max_response_bytes`` caps an answer's decompressed
    size (64 MiB by default).
    """

    name: str = "default"
    host: str = ""
    user: str = ""
    # Plain strings are accepted and wrapped in a Secret when the profile is built.
    password: Secret | str | None = None
    token_name: str | None = None
    token_value: Secret | str | None = None
    otp: Secret | str | Callable[[], str] | None = None
    scheme: str = "https"
    api_path: str = API_PATH
    verify_ssl: bool = True
    ca_file: str | None = None
    fingerprint: str | None = None
    timeout: float | tuple[float, float] = 30.0
    cache: bool | str = True
    retries: int = 3
    backoff: float = 0.5
    max_response_bytes: int = 64 * 2**20
    source: str = "connect() arguments"
    groups: tuple[str, ...] = field(default=())

    # -- validation ---------------------------------------------------------------------------

    def _fail(self, fieldname: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: profile {self.name!r}, field {fieldname!r} - {message}")

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"{self.source}: a profile needs a non-empty name")
        self._set("name", self.name.strip())
        self._normalize_host()
        self._normalize_identity()
        self._normalize_tls()
        self._normalize_behaviour()

    def _where(self, fieldname: str) -> str:
        return f"{self.source}: profile {self.name!r}, field {fieldname!r}"

    def _normalize_host(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise self._fail("host", "no host given (e.g. host: pve1.example.com)")
        try:
            scheme, hostport, path = normalize_host(self.host)
        except ValueError as exc:
            raise self._fail("host", str(exc)) from None
        if scheme is None:
            scheme = self.scheme
        if scheme not in ("http", "https"):
            raise self._fail("scheme", f"{scheme!r} is not http or https")
        if path == API_PATH and self.api_path != API_PATH:
            try:
                path = normalize_host(f"x{self.api_path}")[2]
            except ValueError as exc:
                raise self._fail("api_path", str(exc)) from None
        self._set("scheme", scheme)
        self._set("host", hostport)
        self._set("api_path", path)

    def _normalize_identity(self) -> None:
        user = self.user.strip() if isinstance(self.user, str) else ""
        token_name = self.token_name.strip() if isinstance(self.token_name, str) else None
        if self.token_name is not None and not isinstance(self.token_name, str):
            raise self._fail("token_name", "must be a string")
        # A token id never contains '=': one that does is the id with its secret pasted on
        # (user@realm!name=SECRET). Say so, and never echo the value.
        pasted_user = "!" in user and "=" in user.split("!", 1)[1]
        for fieldname, pasted in (
            ("token_name", bool(token_name) and "=" in (token_name or "")),
            ("user", pasted_user),
        ):
            if pasted:
                raise self._fail(
                    fieldname,
                    "contains '=': it looks like a token id with its secret pasted on "
                    "(user@realm!name=SECRET); give token_name='user@realm!name' and the "
                    "secret as token_value (value not shown)",
                )
        token_value = self.token_value
        if isinstance(token_value, str):
            text = token_value.strip()
            if text.startswith("PVEAPIToken="):
                # The whole header value: PVEAPIToken=user@realm!name=secret
                ident, eq, secret = text[len("PVEAPIToken=") :].partition("=")
                t_user, t_name = _split_token_id(ident)
                if not eq or not secret or not t_name:
                    raise self._fail(
                        "token_value",
                        "a PVEAPIToken string must look like PVEAPIToken=user@realm!name=SECRET",
                    )
                if token_name and _split_token_id(token_name)[1] not in ("", t_name):
                    raise self._fail("token_name", "does not match the PVEAPIToken string")
                token_name = f"{t_user}!{t_name}"
                token_value = Secret.of(secret, self._where("token_value"))
            elif not text:
                raise self._fail("token_value", "is empty")
            else:
                token_value = Secret.of(token_value, self._where("token_value"))
        elif token_value is not None and not isinstance(token_value, Secret):
            raise self._fail("token_value", "must be a string")
        # user@realm!name given as user or as token_name
        if "!" in user:
            user, name_from_user = _split_token_id(user)
            if token_name and _split_token_id(token_name)[1] not in ("", name_from_user):
                raise self._fail("token_name", "differs from the token name in user")
            token_name = token_name or name_from_user
        if token_name and "!" in token_name:
            t_user, t_name = _split_token_id(token_name)
            if user and t_user and _with_realm(user) != _with_realm(t_user):
                raise self._fail("token_name", f"token belongs to {t_user!r} but user is {user!r}")
            user = user or t_user
            token_name = t_name
        user = _with_realm(user or "root")
        if not _USER_RE.fullmatch(user):
            raise self._fail("user", f"{user!r} is not of the form name@realm")
        password = self.password
        if isinstance(password, str):
            if password == "":
                raise self._fail("password", "is empty")
            password = Secret.of(password, self._where("password"))
        elif password is not None and not isinstance(password, Secret):
            raise self._fail("password", "must be a string")
        if token_name is not None:
            if not _TOKEN_NAME_RE.fullmatch(token_name):
                raise self._fail("token_name", f"{token_name!r} is not a valid token name")
            if token_value is None:
                raise self._fail("token_value", "a token name needs a token value (secret)")
        elif token_value is not None:
            raise self._fail("token_name", "a token value needs a token name (user@realm!name)")
        if token_name is not None and password is not None:
            raise self._fail("password", "give either a password or an API token, not both")
        if token_name is None and password is None:
            raise self._fail(
                "password",
                "no credentials: give a password (or password_env / password_command) "
                "or an API token (token_name + token_value)",
            )
        otp = self.otp
        if isinstance(otp, str):
            otp = Secret.of(otp, self._where("otp"))
        elif otp is not None and not (isinstance(otp, Secret) or callable(otp)):
            raise self._fail("otp", "must be a TOTP code string or a callable returning one")
        if otp is not None and token_name is not None:
            raise self._fail("otp", "API tokens do not use a second factor")
        self._set("user", user)
        self._set("token_name", token_name)
        self._set("token_value", token_value)
        self._set("password", password)
        self._set("otp", otp)

    def _normalize_tls(self) -> None:
        if not isinstance(self.verify_ssl, bool):
            raise self._fail("verify_ssl", "must be true or false")
        if self.fingerprint is not None:
            if not isinstance(self.fingerprint, str):
                raise self._fail("fingerprint", "must be a string")
            if self.scheme != "https":
                raise self._fail("fingerprint", "fingerprint pinning needs https://")
            try:
                self._set("fingerprint", _normalize_fingerprint(self.fingerprint))
            except ValueError as exc:
                raise self._fail("fingerprint", str(exc)) from None
        if self.ca_file is not None:
            if not isinstance(self.ca_file, str | os.PathLike) or not str(self.ca_file):
                raise self._fail("ca_file", "must be a file path")
            path = Path(os.path.expandvars(str(self.ca_file))).expanduser()
            if not path.is_file():
                raise self._fail("ca_file", f"CA file {str(path)!r} does not exist")
            self._set("ca_file", str(path))

    def _normalize_behaviour(self) -> None:
        timeout = self.timeout
        if isinstance(timeout, list | tuple):
            if len(timeout) != 2 or not all(_is_positive_number(t) for t in timeout):
                raise self._fail(
                    "timeout",
                    f"must be seconds or (connect, read) seconds, > 0 and <= {MAX_SECONDS:g}",
                )
            self._set("timeout", (float(timeout[0]), float(timeout[1])))
        elif _is_positive_number(timeout):
            self._set("timeout", float(timeout))
        else:
            raise self._fail(
                "timeout",
                f"{_shown(timeout)} is not a number of seconds > 0 and <= {MAX_SECONDS:g}",
            )
        cache = self.cache
        if isinstance(cache, str):
            lowered = cache.strip().lower()
            mapping: dict[str, bool | str] = {
                "memory": "memory",
                "sqlite": True,
                "true": True,
                "on": True,
                "false": False,
                "off": False,
                "none": False,
            }
            if lowered not in mapping:
                raise self._fail("cache", f"{_shown(cache)} is not true, false or 'memory'")
            cache = mapping[lowered]
        if not isinstance(cache, bool) and cache != "memory":
            raise self._fail("cache", f"{_shown(cache)} is not true, false or 'memory'")
        self._set("cache", cache)
        retries = self.retries
        if (
            isinstance(retries, bool)
            or not isinstance(retries, int)
            or not 0 <= retries <= MAX_RETRIES
        ):
            raise self._fail(
                "retries", f"{_shown(retries)} is not a whole number from 0 to {MAX_RETRIES}"
            )
        backoff = self.backoff
        if (
            isinstance(backoff, bool)
            or not isinstance(backoff, int | float)
            or not math.isfinite(backoff)
            or not 0 <= backoff <= MAX_SECONDS
        ):
            raise self._fail(
                "backoff", f"{_shown(backoff)} is not a number of seconds from 0 to {MAX_SECONDS:g}"
            )
        self._set("backoff", float(self.backoff))
        cap = self.max_response_bytes
        if isinstance(cap, bool) or not isinstance(cap, int) or not 1024 <= cap <= 2**40:
            raise self._fail(
                "max_response_bytes", f"{cap!r} is not a whole number of bytes (1024 .. 2**40)"
            )
        if isinstance(self.groups, str):
            self._set("groups", (self.groups,))
        else:
            self._set("groups", tuple(str(g) for g in self.groups))

    # -- derived facts ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``https://pve1:8006/api2/json``."""
        return f"{self.scheme}://{self.host}{self.api_path}"

    @property
    def is_token(self) -> bool:
        """True for API-token authentication."""
        return self.token_name is not None

    @property
    def auth_kind(self) -> str:
        """``"token"`` or ``"password"``."""
        return "token" if self.is_token else "password"

    @property
    def token_id(self) -> str | None:
        """``user@realm!name`` for API tokens, else ``None``."""
        return f"{self.user}!{self.token_name}" if self.token_name else None

    @property
    def identity(self) -> str:
        """Who the requests run as: the token id for tokens, else the user."""
        return self.token_id or self.user

    @property
    def tls(self) -> str:
        """How the server is authenticated: ``pinned``, ``ca-file``, ``verified``,
        ``INSECURE`` (no verification) or ``plain-http``."""
        if self.scheme == "http":
            return "plain-http"
        if self.fingerprint:
            return "pinned"
        if not self.verify_ssl:
            return "INSECURE"
        return "ca-file" if self.ca_file else "verified"

    @property
    def insecure(self) -> bool:
        """True when the server's identity is not checked (``verify_ssl=False`` or http)."""
        return self.tls in ("INSECURE", "plain-http")

    def __repr__(self) -> str:
        extra = ""
        if self.insecure:
            extra = " (server identity NOT verified)"
        return (
            f"Profile({self.name!r}, host={self.host!r}, user={self.identity!r}, "
            f"auth={self.auth_kind}, tls={self.tls}{extra})"
        )

    def replace(self, **changes: Any) -> Profile:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _shown(value: Any, limit: int = 40) -> str:
    """A short repr of a bad value for an error message (a YAML structure may be huge)."""
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 3] + "..."
    return f"a {type(value).__name__}"


def _with_realm(user: str) -> str:
    return user if "@" in user else f"{user}@pam"


#: Longest timeout or backoff accepted, in seconds (a day): beyond it is a typo or ``.inf``.
MAX_SECONDS = 86400.0
#: Most read retries accepted.
MAX_RETRIES = 100


def _is_positive_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value <= MAX_SECONDS
    )


# --------------------------------------------------------------------------------------------
# Config files


def config_path() -> Path:
    """Path of pvekit's config file (``PVEKIT_CONFIG`` overrides)."""
    override = os.environ.get("PVEKIT_CONFIG")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("pvekit")) / "config.yaml"


def pvetui_config_path() -> Path:
    """Path of pvetui's config file (``PVEKIT_PVETUI_CONFIG`` overrides)."""
    override = os.environ.get("PVEKIT_PVETUI_CONFIG")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("pvetui")) / "config.yml"


@dataclass
class Config:
    """Profiles and groups from every source. Look profiles up with :meth:`profile`.

    A profile whose definition is broken does not stop the others from loading: its
    :class:`~pvekit.ConfigError` is kept in ``errors`` and raised when that profile is used.
    """

    profiles: dict[str, Profile] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default: str | None = None
    errors: dict[str, ConfigError] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    group_sources: dict[str, str] = field(default_factory=dict)
    # group -> "aggregate" (every profile, data merged) or "cluster" (one active profile of
    # the same cluster, failing over): pvetui's group_settings.<name>.mode.
    group_modes: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """All profile names, including broken ones."""
        return sorted(set(self.profiles) | set(self.errors))

    def profile(self, name: str | None = None) -> Profile:
        """The profile called ``name`` (the default profile when ``None``)."""
        if name is None:
            if self.default is None:
                raise ConfigError(
                    "no profile given and no default profile configured "
                    f"(looked in: {', '.join(self.sources) or 'no config files'}); "
                    "pass host=... or a profile name, set 'default:' in the config file, "
                    "or try pvekit.demo()"
                )
            name = self.default
        if name in self.errors:
            raise self.errors[name]
        if name not in self.profiles:
            known = ", ".join(self.names) or "none"
            raise ConfigError(
                f"unknown profile {name!r} (known profiles: {known}; "
                f"looked in: {', '.join(self.sources) or 'no config files'})"
            )
        return self.profiles[name]

    def group_mode(self, name: str) -> str:
        """``"aggregate"`` (default) or ``"cluster"`` (HA failover) for group ``name``."""
        self.group(name)
        return self.group_modes.get(name, "aggregate")

    def group(self, name: str) -> list[Profile]:
        """The profiles of group ``name``, in the order the config lists them."""
        if name not in self.groups:
            known = ", ".join(sorted(self.groups)) or "none"
            raise ConfigError(f"unknown group {name!r} (known groups: {known})")
        where = self.group_sources.get(name, "config")
        members: list[Profile] = []
        for member in self.groups[name]:
            if member in self.errors:
                raise self.errors[member]
            if member not in self.profiles:
                raise ConfigError(
                    f"{where}: group {name!r} names profile {member!r}, which is not defined"
                )
            members.append(self.profiles[member])
        return members


_PROFILE_KEYS = {
    "host",
    "addr",
    "user",
    "realm",
    "password",
    "password_env",
    "password_command",
    "token_name",
    "token_id",
    "token_value",
    "token_secret",
    "token_value_env",
    "token_value_command",
    "token",
    "otp_command",
    "verify_ssl",
    "insecure",
    "ca_file",
    "fingerprint",
    "timeout",
    "connect_timeout",
    "cache",
    "retries",
    "backoff",
    "groups",
    "api_path",
    "max_response_bytes",
}


#: Deepest nesting and most nodes (aliases expanded) a config file may have: real ones use
#: a few levels and a few hundred nodes; a ~1 KB alias bomb expands to hundreds of millions.
MAX_CONFIG_DEPTH = 50
MAX_CONFIG_NODES = 100_000


class _TooBig(Exception):
    pass


def _bounded_load(text: str) -> Any:
    """``yaml.safe_load`` with the nesting depth and the alias-expanded size bounded.

    Bounds are checked on the composed node graph, before any Python object is built (a
    shared alias costs nothing to compose; walking or printing what it expands to would).
    """
    import yaml

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_CONFIG_DEPTH:
                    mark = self.peek_event().start_mark
                    raise _TooBig(
                        f"nested too deep (more than {MAX_CONFIG_DEPTH} levels) at line "
                        f"{mark.line + 1}, column {mark.column + 1}"
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expanded_size(root: Any) -> None:
    import yaml

    sizes: dict[int, int] = {}  # id(node) -> nodes it expands to, computed once per node
    aliased = False

    def size(node: Any) -> int:
        nonlocal aliased
        known = sizes.get(id(node))
        if known is not None:
            aliased = True  # the same node reached twice: an alias
            return known
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        if total > MAX_CONFIG_NODES:
            mark = node.start_mark
            why = "YAML aliases expand it to" if aliased else "it has"
            raise _TooBig(
                f"refused: {why} more than {MAX_CONFIG_NODES} values (an alias bomb?), at "
                f"line {mark.line + 1}, column {mark.column + 1}"
            )
        sizes[id(node)] = total
        return total

    size(root)


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    try:
        return _bounded_load(text)
    except _TooBig as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        # Report position and problem only: PyYAML's snippet would echo file content (secrets).
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}") from None


def _secret_from(
    data: Mapping[str, Any], base: str, where: str, *, env_key: str, cmd_key: str
) -> Secret | None:
    present = [k for k in (base, env_key, cmd_key) if data.get(k) not in (None, "")]
    if len(present) > 1:
        raise ConfigError(f"{where}: give only one of {', '.join(present)}")
    if not present:
        return None
    key = present[0]
    value = data[key]
    field_where = f"{where}, field {key!r}"
    if key == cmd_key:
        return _command_secret(value, field_where)
    if not isinstance(value, str | int):
        raise ConfigError(f"{field_where} - must be a string")
    if key == env_key:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(value)):
            raise ConfigError(f"{field_where} - {value!r} is not an environment variable name")
        return Secret(env=str(value), where=field_where)
    return Secret.of(str(value), field_where)


def _command_secret(value: Any, where: str) -> Secret:
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return Secret(command=[str(v) for v in value], where=where)
    if isinstance(value, str):
        return Secret(command=value, where=where)
    raise ConfigError(f"{where} - must be a command string or a list of arguments")


def _profile_from_pvekit(name: str, data: Any, source: str) -> Profile:
    where = f"{source}: profile {name!r}"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping of settings")
    unknown = sorted(str(k) for k in data if k not in _PROFILE_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(repr(u) for u in unknown)} "
            f"(known: {', '.join(sorted(_PROFILE_KEYS))})"
        )
    for a, b in (("host", "addr"), ("token_name", "token_id"), ("token_value", "token_secret")):
        if data.get(a) is not None and data.get(b) is not None:
            raise ConfigError(f"{where}: give {a!r} or {b!r}, not both")
    host = data.get("host", data.get("addr"))
    if host is None:
        raise ConfigError(f"{where}, field 'host' - missing")
    if not isinstance(host, str):
        raise ConfigError(f"{where}, field 'host' - must be a string")
    text_fields = {"user": data.get("user"), "realm": data.get("realm")}
    for key, value in text_fields.items():
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where}, field {key!r} - must be a string")
    user = data.get("user") or ""
    realm = data.get("realm")
    if realm and user and "@" not in user:
        user = f"{user}@{realm}"
    elif realm and user and "@" in user and not user.split("!")[0].endswith(f"@{realm}"):
        raise ConfigError(f"{where}, field 'realm' - {realm!r} differs from the realm in user")
    password = _secret_from(
        {**data}, "password", where, env_key="password_env", cmd_key="password_command"
    )
    token_data = {**data}
    if "token_secret" in data:
        token_data["token_value"] = data["token_secret"]
    token_value = _secret_from(
        token_data, "token_value", where, env_key="token_value_env", cmd_key="token_value_command"
    )
    token_name = data.get("token_name", data.get("token_id"))
    if token_name is not None and not isinstance(token_name, str):
        raise ConfigError(f"{where}, field 'token_name' - must be a string")
    whole = data.get("token")
    if whole is not None:
        if token_value is not None or token_name is not None:
            raise ConfigError(f"{where}, field 'token' - give 'token' or token_name/token_value")
        if not isinstance(whole, str):
            raise ConfigError(f"{where}, field 'token' - must be a PVEAPIToken=... string")
        scheme = _encryption_scheme(whole)
        if scheme:
            raise ConfigError(
                f"{where}, field 'token' - the value is {scheme}-encrypted and pvekit cannot "
                "decrypt it; use token_value_command instead"
            )
    # A one-time code cannot sit in a file: otp_command is the only key (an "otp" or
    # "otp_env" field is refused above as unknown).
    otp: Secret | None = None
    if data.get("otp_command") not in (None, ""):
        otp = _command_secret(data["otp_command"], f"{where}, field 'otp_command'")
    verify_ssl = data.get("verify_ssl", True)
    if "insecure" in data:
        if "verify_ssl" in data:
            raise ConfigError(f"{where}: give 'verify_ssl' or 'insecure', not both")
        if not isinstance(data["insecure"], bool):
            raise ConfigError(f"{where}, field 'insecure' - must be true or false")
        verify_ssl = not data["insecure"]
    if not isinstance(verify_ssl, bool):
        raise ConfigError(f"{where}, field 'verify_ssl' - must be true or false")
    timeout: Any = data.get("timeout", 30.0)
    if data.get("connect_timeout") is not None:
        timeout = (data["connect_timeout"], timeout)
    groups = data.get("groups", ())
    if isinstance(groups, str):
        groups = (groups,)
    if not isinstance(groups, list | tuple) or not all(isinstance(g, str) for g in groups):
        raise ConfigError(f"{where}, field 'groups' - must be a list of group names")
    kwargs: dict[str, Any] = {
        "name": name,
        "host": host,
        "user": user,
        "password": password,
        "token_name": token_name,
        "token_value": whole if whole is not None else token_value,
        "otp": otp,
        "verify_ssl": verify_ssl,
        "ca_file": data.get("ca_file"),
        "fingerprint": data.get("fingerprint"),
        "timeout": timeout,
        "cache": data.get("cache", True),
        "retries": data.get("retries", 3),
        "backoff": data.get("backoff", 0.5),
        "source": source,
        "groups": tuple(groups),
    }
    if data.get("api_path") is not None:
        kwargs["api_path"] = data["api_path"]
    if data.get("max_response_bytes") is not None:
        kwargs["max_response_bytes"] = data["max_response_bytes"]
    return Profile(**kwargs)


def _load_pvekit(path: Path, cfg: Config) -> None:
    data = _read_yaml(path)
    source = str(path)
    if data is None:
        return
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping (profiles:, groups:, ...)")
    allowed = {"profiles", "groups", "default", "default_profile", "group_settings"}
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key(s) {', '.join(repr(u) for u in unknown)} "
            "(known: profiles, groups, group_settings, default)"
        )
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, Mapping):
        raise ConfigError(f"{source}: 'profiles' must be a mapping of name -> settings")
    for name, pdata in profiles.items():
        pname = str(name)
        try:
            cfg.profiles[pname] = _profile_from_pvekit(pname, pdata, source)
        except ConfigError as exc:
            cfg.errors[pname] = exc
    groups = data.get("groups") or {}
    if not isinstance(groups, Mapping):
        raise ConfigError(f"{source}: 'groups' must be a mapping of name -> list of profiles")
    for gname, members in groups.items():
        if isinstance(members, str) or not isinstance(members, list):
            raise ConfigError(f"{source}: group {gname!r} must be a list of profile names")
        if not members or not all(isinstance(m, str) for m in members):
            raise ConfigError(f"{source}: group {gname!r} must list at least one profile name")
        cfg.groups[str(gname)] = tuple(dict.fromkeys(members))
        cfg.group_sources[str(gname)] = source
    for pname, profile in cfg.profiles.items():
        for g in profile.groups:
            if pname not in cfg.groups.get(g, ()):
                cfg.groups[g] = (*cfg.groups.get(g, ()), pname)
                cfg.group_sources.setdefault(g, source)
    _read_group_settings(data.get("group_settings"), source, cfg, own=True)
    if "default" in data and "default_profile" in data:
        raise ConfigError(f"{source}: give 'default' or 'default_profile', not both")
    default = data.get("default", data.get("default_profile"))
    if default is not None:
        if not isinstance(default, str):
            raise ConfigError(f"{source}: 'default' must be a profile name")
        if default not in cfg.profiles and default not in cfg.errors:
            raise ConfigError(
                f"{source}: 'default' names profile {default!r}, which is not defined"
            )
        cfg.default = default


def _pvetui_profile(name: str, data: Any, source: str) -> Profile:
    where = f"{source}: pvetui profile {name!r}"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping of settings")
    for key in ("addr", "user", "realm", "token_id", "api_path"):
        value = data.get(key)
        if isinstance(value, str) and _encryption_scheme(value):
            raise ConfigError(
                f"{where}, field {key!r} - the value is {_encryption_scheme(value)}-encrypted "
                "and pvekit cannot decrypt it; decrypt the file (sops -d) or define the profile "
                "in ~/.config/pvekit/config.yaml"
            )
    addr = data.get("addr")
    if not isinstance(addr, str) or not addr.strip():
        raise ConfigError(f"{where}, field 'addr' - missing")
    user = str(data.get("user") or "")
    realm = str(data.get("realm") or "")
    if user and "@" not in user:
        user = f"{user}@{realm or 'pam'}"
    password_raw = data.get("password")
    secret_raw = data.get("token_secret")
    token_id = data.get("token_id")
    password = Secret.of(str(password_raw), f"{where}, field 'password'") if password_raw else None
    token_value = (
        Secret.of(str(secret_raw), f"{where}, field 'token_secret'") if secret_raw else None
    )
    if password is not None and token_value is not None:
        raise ConfigError(f"{where}: has both a password and a token (pvetui rejects that too)")
    if token_value is None:
        token_id = None
    groups_raw = data.get("groups") or ()
    if isinstance(groups_raw, str):
        groups_raw = [groups_raw]
    groups = [str(g) for g in groups_raw] if isinstance(groups_raw, list | tuple) else []
    if data.get("aggregate"):
        groups.append(str(data["aggregate"]))
    insecure = data.get("insecure", False)
    if not isinstance(insecure, bool):
        raise ConfigError(f"{where}, field 'insecure' - must be true or false")
    kwargs: dict[str, Any] = {
        "name": name,
        "host": addr,
        "user": user,
        "password": password,
        "token_name": str(token_id) if token_id else None,
        "token_value": token_value,
        "verify_ssl": not insecure,
        "source": f"{source} (pvetui)",
        "groups": tuple(dict.fromkeys(groups)),
    }
    api_path = data.get("api_path")
    if isinstance(api_path, str) and api_path.strip() and api_path.strip() != API_PATH:
        kwargs["api_path"] = api_path.strip()
    if token_value is not None and not token_id:
        raise ConfigError(f"{where}, field 'token_id' - a token_secret needs a token_id")
    return Profile(**kwargs)


GROUP_MODES = ("aggregate", "cluster")


def _read_group_settings(raw: Any, source: str, cfg: Config, *, own: bool) -> None:
    """``group_settings: {name: {mode: aggregate|cluster}}`` (pvetui's layout, also accepted
    in pvekit's file). A setting for a group that does not exist is an error, as in pvetui."""
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: 'group_settings' must be a mapping of group -> settings")
    for gname, settings in raw.items():
        name = str(gname)
        where = f"{source}: group_settings {name!r}"
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{where} must be a mapping (mode: aggregate or cluster)")
        unknown = sorted(str(k) for k in settings if k != "mode")
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
        mode = settings.get("mode", "aggregate")
        if mode not in GROUP_MODES:
            raise ConfigError(
                f"{where}, field 'mode' - {mode!r} is not a group mode "
                f"(expected one of: {', '.join(GROUP_MODES)})"
            )
        if name not in cfg.groups:
            raise ConfigError(f"{where} does not match any group")
        if not own and name in cfg.group_modes:
            continue  # pvekit's own setting wins
        if not own and not cfg.group_sources.get(name, "").endswith("(pvetui)"):
            continue  # a pvekit group of that name: pvetui's setting is not about it
        cfg.group_modes[name] = str(mode)


def _load_pvetui(path: Path, cfg: Config) -> None:
    data = _read_yaml(path)
    source = str(path)
    if data is None:
        return
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping")
    profiles = data.get("profiles")
    if not profiles and (data.get("addr") or data.get("user")):
        # pvetui's legacy single-profile layout becomes profile "default", as pvetui does.
        profiles = {"default": {k: data.get(k) for k in data if not isinstance(data[k], dict)}}
    if profiles is None:
        profiles = {}
    if not isinstance(profiles, Mapping):
        raise ConfigError(f"{source}: 'profiles' must be a mapping of name -> settings")
    added: list[str] = []
    for name, pdata in profiles.items():
        pname = str(name)
        if pname in cfg.profiles or pname in cfg.errors:
            continue  # pvekit's own definition wins
        try:
            cfg.profiles[pname] = _pvetui_profile(pname, pdata, source)
        except ConfigError as exc:
            cfg.errors[pname] = exc
        added.append(pname)
    for pname in added:
        profile = cfg.profiles.get(pname)
        if profile is None:
            continue
        for g in profile.groups:
            if g in cfg.group_sources and cfg.group_sources[g] != f"{source} (pvetui)":
                continue  # a pvekit group of that name wins
            cfg.groups[g] = (*cfg.groups.get(g, ()), pname)
            cfg.group_sources[g] = f"{source} (pvetui)"
    _read_group_settings(data.get("group_settings"), source, cfg, own=False)
    default = data.get("default_profile")
    if cfg.default is None and isinstance(default, str) and default in added:
        cfg.default = default


def _env_bool(environ: Mapping[str, str], name: str) -> bool | None:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    flag = parse_bool(raw)
    if flag is None:
        raise ConfigError(f"environment variable {name}={raw!r} is not true/false")
    return flag


def _load_env(environ: Mapping[str, str], cfg: Config) -> None:
    host = environ.get("PROXMOX_HOST") or environ.get("PROXMOX_ADDR")
    if not host:
        return
    source = "PROXMOX_* environment variables"
    try:
        validate = _env_bool(environ, "PROXMOX_VALIDATE_CERTS")
        insecure = _env_bool(environ, "PROXMOX_INSECURE")
        verify = True
        if validate is not None:
            verify = validate
        elif insecure is not None:
            verify = not insecure
        user = environ.get("PROXMOX_USER", "")
        realm = environ.get("PROXMOX_REALM", "")
        if user and realm and "@" not in user:
            user = f"{user}@{realm}"
        token_id = environ.get("PROXMOX_TOKEN_ID") or None
        token_secret = environ.get("PROXMOX_TOKEN_SECRET") or None
        password = environ.get("PROXMOX_PASSWORD") or None
        where = f"{source}: profile 'env'"
        cfg.profiles["env"] = Profile(
            name="env",
            host=host,
            user=user,
            password=Secret(env="PROXMOX_PASSWORD", where=where) if password else None,
            token_name=token_id,
            token_value=Secret(env="PROXMOX_TOKEN_SECRET", where=where) if token_secret else None,
            verify_ssl=verify,
            source=source,
        )
    except ConfigError as exc:
        cfg.errors["env"] = exc


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    pvetui_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read every profile source: pvekit's file, pvetui's file and ``PROXMOX_*`` variables.

    Missing files are fine (no profiles from them). A file that cannot be parsed raises
    :class:`~pvekit.ConfigError` naming it; a broken profile is kept in ``Config.errors`` and
    raised when used. pvekit's own profiles and groups win over pvetui's of the same name.
    """
    cfg = Config()
    env = os.environ if environ is None else environ
    sources: list[str] = []
    main = Path(path).expanduser() if path is not None else config_path()
    if main.exists():
        sources.append(str(main))
        _load_pvekit(main, cfg)
    tui = Path(pvetui_path).expanduser() if pvetui_path is not None else pvetui_config_path()
    if tui.exists():
        sources.append(str(tui))
        _load_pvetui(tui, cfg)
    if "env" not in cfg.profiles and "env" not in cfg.errors:
        before = set(cfg.profiles) | set(cfg.errors)
        _load_env(env, cfg)
        if "env" in (set(cfg.profiles) | set(cfg.errors)) - before:
            sources.append("PROXMOX_* environment variables")
    if cfg.default is None:
        if "env" in cfg.profiles:
            cfg.default = "env"
        elif len(cfg.names) == 1:
            cfg.default = cfg.names[0]
    cfg.sources = tuple(sources)
    return cfg
