"""Front doors: :func:`connect`, :func:`connect_group` and :func:`demo`."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import requests

from ._config import DEFAULT_PORT, Profile, load_config, normalize_host
from ._errors import ConfigError, InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from ._cluster import Cluster
    from ._group import Group

__all__ = ["connect", "connect_group", "demo", "resolve_profile"]

_DEFAULT_TIMEOUT = 30.0


class _Unset(enum.Enum):
    """"Not given", as distinct from any value (httpx's ``USE_CLIENT_DEFAULT``).

    An argument equal to its documented default must still override a profile that says
    otherwise: ``connect("lax", verify_ssl=True)`` turns TLS verification back on.
    """

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET


def _host_name(host: str) -> str:
    """The profile name an ad-hoc ``connect(host=...)`` gets: the host as written, without
    scheme, API path or the default port (``pve1``, ``10.0.0.5:8443``)."""
    try:
        _, hostport, _ = normalize_host(host)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    name, _, port = hostport.rpartition(":")
    return name if port == str(DEFAULT_PORT) else hostport


def resolve_profile(
    profile: str | Profile | None = None,
    *,
    name: str | None = None,
    host: str | None = None,
    user: str | None = None,
    password: str | None = None,
    token_name: str | None = None,
    token_value: str | None = None,
    otp: str | Callable[[], str] | None = None,
    verify_ssl: bool | _Unset = UNSET,
    ca_file: str | None = None,
    fingerprint: str | None = None,
    timeout: float | tuple[float, float] | _Unset = UNSET,
    cache: bool | str | _Unset = UNSET,
    retries: int | None = None,
    backoff: float | None = None,
) -> Profile:
    """The :class:`Profile` that :func:`connect` would use for these arguments.

    With ``host`` the arguments describe the connection; its profile is named ``name`` (or
    ``profile``, if a string), else after the host (``pve1``; ``127.0.0.1:8443`` when the port
    is not 8006), so two ad-hoc clusters can form a :class:`~pvekit.Group`. Without ``host``
    the profile comes from the config (``profile`` name, or the default profile); arguments
    other than their defaults override its settings (e.g. ``otp=``; ``name=`` renames it).
    """
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidInputError(f"name must be a non-empty string, not {name!r}")
    if name is not None and isinstance(profile, str) and host is not None and profile != name:
        raise InvalidInputError(
            f"profile {profile!r} and name {name!r} both name the connection: give one"
        )
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "user": user,
            "password": password,
            "token_name": token_name,
            "token_value": token_value,
            "otp": otp,
            "ca_file": ca_file,
            "fingerprint": fingerprint,
            "retries": retries,
            "backoff": backoff,
        }.items()
        if v is not None
    }
    for key, value in (("verify_ssl", verify_ssl), ("timeout", timeout), ("cache", cache)):
        if value is not UNSET:
            overrides[key] = value
    if host is not None:
        if isinstance(profile, Profile):
            raise InvalidInputError("give either a Profile or host=..., not both")
        if profile is not None and not isinstance(profile, str):
            raise InvalidInputError(f"profile must be a name or a Profile, not {profile!r}")
        fields: dict[str, Any] = {
            "name": name or profile or _host_name(host),
            "host": host,
            "verify_ssl": True,
            "timeout": _DEFAULT_TIMEOUT,
            "cache": True,
            **overrides,
        }
        try:
            return Profile(**fields)
        except ConfigError as exc:
            # Arguments, not a file, were wrong: report it as bad input.
            raise InvalidInputError(exc.message) from None
    if isinstance(profile, Profile):
        base = profile
    elif profile is None or isinstance(profile, str):
        base = load_config().profile(profile)
    else:
        raise InvalidInputError(f"profile must be a name or a Profile, not {profile!r}")
    if name is not None:
        overrides["name"] = name
    if not overrides:
        return base
    if ("token_name" in overrides or "token_value" in overrides) and base.password:
        overrides.setdefault("password", None)
    if "password" in overrides and overrides["password"] is not None and base.is_token:
        overrides.update(token_name=None, token_value=None)
    if "user" in overrides and "token_name" not in overrides and base.is_token:
        overrides["token_name"] = base.token_name
    try:
        return base.replace(**overrides)
    except ConfigError as exc:
        raise InvalidInputError(exc.message) from None


def connect(
    profile: str | Profile | None = None,
    *,
    name: str | None = None,
    host: str | None = None,
    user: str | None = None,
    password: str | None = None,
    token_name: str | None = None,
    token_value: str | None = None,
    otp: str | Callable[[], str] | None = None,
    verify_ssl: bool | _Unset = UNSET,
    ca_file: str | None = None,
    fingerprint: str | None = None,
    timeout: float | tuple[float, float] | _Unset = UNSET,
    cache: bool | str | _Unset = UNSET,
    session: requests.Session | None = None,
    logger: logging.Logger | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    check: bool = True,
) -> Cluster:
    """Connect to one Proxmox VE cluster and return a :class:`~pvekit.Cluster`.

    Either name a configured profile (``connect("prod")``; ``connect()`` uses the default
    profile) or describe the connection::

        pvekit.connect(host="pve1", user="root@pam", password="...")
        pvekit.connect(host="https://pve1:8006", token_name="root@pam!pvekit", token_value="...")
        pvekit.connect(host="pve1", token_value="PVEAPIToken=root@pam!pvekit=...")

    ``host`` may be ``pve1``, ``pve1:8006``, ``https://pve1:8006`` or
    ``https://pve1:8006/api2/json``; ``user`` is ``name@realm`` (realm defaults to ``pam``).
    ``name`` names the profile (the ``profile`` column of every frame, the key in a
    :class:`~pvekit.Group`); with ``host`` and no name it is the host (``pve1``), so
    ``Group([connect(host="pve1", ...), connect(host="pve9", ...)])`` just works.
    ``otp`` completes a two-factor login (a TOTP code or a callable returning one).
    ``verify_ssl``/``ca_file``/``fingerprint`` choose the TLS check (the SHA-256 fingerprint
    Proxmox shows is checked before any credential is sent); ``timeout`` is seconds or
    ``(connect, read)``; ``cache`` is ``True`` (SQLite, per profile and identity), ``"memory"``
    or ``False``. ``session``/``logger`` inject a prepared ``requests.Session`` and a logger.
    With ``check=True`` (default) the credentials are tried at once (login, ``GET /version``),
    so a wrong password fails here rather than at the first call.
    """
    from ._cluster import Cluster

    prof = resolve_profile(
        profile,
        name=name,
        host=host,
        user=user,
        password=password,
        token_name=token_name,
        token_value=token_value,
        otp=otp,
        verify_ssl=verify_ssl,
        ca_file=ca_file,
        fingerprint=fingerprint,
        timeout=timeout,
        cache=cache,
        retries=retries,
        backoff=backoff,
    )
    cluster = Cluster(prof, session=session, logger=logger)
    if check:
        try:
            cluster.check()
        except BaseException:
            cluster.close()
            raise
    return cluster


def connect_group(name: str, *, check: bool = False, logger: logging.Logger | None = None) -> Group:
    """Connect to every profile of configured group ``name`` and return a :class:`~pvekit.Group`.

    Connections are lazy by default (``check=False``): a cluster that is down does not stop
    the others; the Group reports it in ``group.status()``.
    """
    from ._group import Group

    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"group name must be a non-empty string, not {name!r}")
    profiles = load_config().group(name)
    clusters: list[Cluster] = []
    try:
        for p in profiles:
            clusters.append(connect(p, check=check, logger=logger))
    except BaseException:
        # A later member failed its check: close the ones already open (sessions, cache files).
        for c in clusters:
            c.close()
        raise
    return Group(clusters)


_DEMO_GROUP_CLASSES: dict[type, type] = {}


def _demo_group_class(base: type) -> type:
    """A Group subclass that owns the simulator and stops it on ``close()``."""
    if base not in _DEMO_GROUP_CLASSES:

        class DemoGroup(base):
            """A Group of the embedded simulator's clusters; ``close()`` stops the simulator."""

            simulator: Any = None

            def close(self) -> None:
                try:
                    super().close()
                finally:
                    sim = getattr(self, "simulator", None)
                    if sim is not None:
                        self.simulator = None
                        sim.stop()

        DemoGroup.__name__ = DemoGroup.__qualname__ = base.__name__
        _DEMO_GROUP_CLASSES[base] = DemoGroup
    return _DEMO_GROUP_CLASSES[base]


def demo(
    scenario: str = "demo",
    *,
    https: bool = False,
    identity: str = "root",
    seed: int = 0,
    cache: bool | str = "memory",
    **sim_kwargs: Any,
) -> Group:
    """Start the embedded Proxmox VE simulator and return a connected :class:`~pvekit.Group`.

    The demo scenario has two clusters (``prod`` with 3 nodes, ``lab`` with 1). The group owns
    the simulator: ``group.close()`` stops it. ``https=True`` serves TLS with a self-signed
    certificate (pinned by fingerprint); ``identity`` picks the simulated user (``root``,
    ``token``, ``auditor``, ``tfa``).
    """
    from ._group import Group
    from .sim import Simulator

    sim = Simulator(scenario, https=https, seed=seed, **sim_kwargs)
    sim.start()
    clusters: list[Any] = []
    try:
        for name, simcluster in sim.clusters.items():
            kwargs = dict(simcluster.connect_kwargs(identity=identity))
            kwargs.pop("profile", None)
            kwargs.setdefault("cache", cache)
            clusters.append(connect(name, **kwargs))
        group = _demo_group_class(Group)(clusters)
    except BaseException:
        for c in clusters:
            c.close()
        sim.stop()
        raise
    group.simulator = sim
    return group
