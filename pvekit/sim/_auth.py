"""Authentication and permissions like ``pve-api-daemon``.

Identities (public demo credentials, documented in docs/simulator.md):

=========  =====================  =======================================================
identity   user                   how
=========  =====================  =======================================================
root       ``root@pam``           password ``pvekit-demo`` (Administrator)
token      ``root@pam!pvekit``    API token, secret from :attr:`AuthDB.token_secret`
auditor    ``auditor@pve``        password ``auditor-demo`` (PVEAuditor: read only)
tfa        ``tfa@pve``            password ``tfa-demo`` + TOTP (Administrator)
=========  =====================  =======================================================

Tickets are ``PVE:<user>:<HEX time>::<signature>`` signed with a per-cluster key, valid for two
hours on the simulator clock; a valid ticket can be used as the password to renew it. CSRF
tokens are ``<HEX time>:<signature>`` bound to the user. Rotating the key
(:meth:`AuthDB.expire_tickets`) invalidates every ticket at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._clock import SimClock
from ._errors import SimHTTPError
from ._model import stable_key

__all__ = ["ALL_PRIVS", "AUDIT_PRIVS", "ROLES", "ACLEntry", "AuthDB", "Identity", "User", "totp"]

TICKET_LIFETIME = 7200
TFA_LIFETIME = 120

ALL_PRIVS: tuple[str, ...] = (
    "Datastore.Allocate",
    "Datastore.AllocateSpace",
    "Datastore.AllocateTemplate",
    "Datastore.Audit",
    "Group.Allocate",
    "Mapping.Audit",
    "Mapping.Modify",
    "Mapping.Use",
    "Permissions.Modify",
    "Pool.Allocate",
    "Pool.Audit",
    "Realm.Allocate",
    "Realm.AllocateUser",
    "SDN.Allocate",
    "SDN.Audit",
    "SDN.Use",
    "Sys.AccessNetwork",
    "Sys.Audit",
    "Sys.Console",
    "Sys.Incoming",
    "Sys.Modify",
    "Sys.PowerMgmt",
    "Sys.Syslog",
    "User.Modify",
    "VM.Allocate",
    "VM.Audit",
    "VM.Backup",
    "VM.Clone",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.Console",
    "VM.GuestAgent.Audit",
    "VM.GuestAgent.FileRead",
    "VM.GuestAgent.FileSystemMgmt",
    "VM.GuestAgent.FileWrite",
    "VM.GuestAgent.Unrestricted",
    "VM.Migrate",
    "VM.PowerMgmt",
    "VM.Replicate",
    "VM.Snapshot",
    "VM.Snapshot.Rollback",
)
AUDIT_PRIVS: tuple[str, ...] = (
    "Datastore.Audit",
    "Mapping.Audit",
    "Pool.Audit",
    "SDN.Audit",
    "Sys.Audit",
    "VM.Audit",
    "VM.GuestAgent.Audit",
)


def totp(secret_b32: str, at: float, *, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 TOTP code (SHA-1) for ``secret_b32`` at time ``at``."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    msg = struct.pack(">Q", int(at // step))
    mac = hmac.new(key, msg, hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF) % (10**digits)
    return f"{code:0{digits}d}"


# Built-in roles the simulator grants (PVE has more; these are the ones its ACL uses).
ROLES: dict[str, tuple[str, ...]] = {
    "Administrator": ALL_PRIVS,
    "NoAccess": (),
    "PVEAuditor": AUDIT_PRIVS,
}


@dataclass
class User:
    """A user of the simulated cluster. What it may do comes from :attr:`AuthDB.acl`."""

    userid: str
    password: str
    totp_secret: str | None = None
    email: str | None = None
    # token name -> secret; tokens are not privilege-separated (privsep=0): they have the
    # user's rights, like the demo token of root@pam.
    tokens: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ACLEntry:
    """One line of ``user.cfg``'s ACL: ``roleid`` for ``ugid`` on ``path`` (and below)."""

    path: str
    ugid: str
    roleid: str
    type: str = "user"
    propagate: bool = True


@dataclass(frozen=True)
class Identity:
    """Who made a request."""

    user: str  # "root@pam"
    token: str | None  # token name for token auth
    privs: frozenset[str]
    via_ticket: bool

    @property
    def authid(self) -> str:
        return f"{self.user}!{self.token}" if self.token else self.user


class AuthDB:
    """Users, tokens, tickets and TOTP for one cluster."""

    def __init__(self, cluster: str, clock: SimClock, seed: int = 0, major: int = 9) -> None:
        self.cluster = cluster
        self.major = major
        self.clock = clock
        self._base_key = hashlib.sha256(f"{cluster}:{seed}:pvekit-sim".encode()).digest()
        self._generation = 0
        token_secret = str(
            uuid.UUID(
                int=stable_key("token", cluster, seed) << 64 | stable_key("secret", cluster, seed)
            )
        )
        totp_secret = (
            base64.b32encode(hashlib.sha256(f"totp:{cluster}:{seed}".encode()).digest()[:20])
            .decode()
            .rstrip("=")
        )
        self.users: dict[str, User] = {
            "root@pam": User(
                "root@pam",
                "pvekit-demo",
                email="root@example.com",
                tokens={"pvekit": token_secret},
            ),
            "auditor@pve": User("auditor@pve", "auditor-demo", email="auditor@example.com"),
            "tfa@pve": User("tfa@pve", "tfa-demo", totp_secret=totp_secret),
        }
        # root@pam is the superuser and needs no entry, as on PVE.
        self.acl: list[ACLEntry] = [
            ACLEntry("/", "auditor@pve", "PVEAuditor"),
            ACLEntry("/", "tfa@pve", "Administrator"),
        ]

    def _role(self, roleid: str) -> frozenset[str]:
        # Every request of root@pam asks for Administrator's ~100 privileges: the set is
        # kept per role, valid while ROLES holds the same tuple for it and major is the same.
        source = ROLES.get(roleid, ())
        memo = self.__dict__.setdefault("_role_memo", {})
        hit = memo.get(roleid)
        if hit is not None and hit[0] is source and hit[1] == self.major:
            return hit[2]
        privs = frozenset(source)
        if self.major < 9 and roleid == "Administrator":
            # PVE 8 still has VM.Monitor (9.0 split it into Sys.Audit and VM.GuestAgent.*)
            privs |= {"VM.Monitor"}
        memo[roleid] = (source, self.major, privs)
        return privs

    def privs_of(self, userid: str, path: str = "/") -> frozenset[str]:
        """Privileges of ``userid`` (a token id ``user!name`` has its user's) on ``path``:
        the roles of the most specific ACL path at or above it, like PVE's permission
        propagation."""
        user = userid.split("!", 1)[0]
        if user == "root@pam":
            return self._role("Administrator")
        best: tuple[int, set[str]] = (-1, set())
        for e in self.acl:
            if e.type != "user" or e.ugid != user:
                continue
            base = e.path.rstrip("/")
            applies = path == e.path or (
                e.propagate and (base == "" or path == base or path.startswith(base + "/"))
            )
            if not applies:
                continue
            depth = len([p for p in base.split("/") if p])
            privs = set(self._role(e.roleid))
            if depth > best[0]:
                best = (depth, privs)
            elif depth == best[0]:
                best[1].update(privs)
        return frozenset(best[1])

    # -- public facts for connect_kwargs ----------------------------------------------------

    @property
    def token_secret(self) -> str:
        return self.users["root@pam"].tokens["pvekit"]

    @property
    def totp_secret(self) -> str:
        secret = self.users["tfa@pve"].totp_secret
        assert secret is not None
        return secret

    def current_otp(self) -> str:
        return totp(self.totp_secret, self.clock.now())

    def expire_tickets(self) -> None:
        """Invalidate every ticket and CSRF token issued so far."""
        self._generation += 1

    # -- signing ----------------------------------------------------------------------------

    def _sign(self, text: str) -> str:
        key = self._base_key + self._generation.to_bytes(4, "big")
        return base64.b64encode(hmac.new(key, text.encode(), hashlib.sha256).digest()).decode()

    def _ticket(self, user: str, kind: str = "") -> str:
        stamp = f"{int(self.clock.now()):08X}"
        plain = f"PVE:{kind}{user}:{stamp}"
        return f"{plain}::{self._sign(plain)}"

    def csrf_token(self, user: str) -> str:
        stamp = f"{int(self.clock.now()):08X}"
        return f"{stamp}:{self._sign(f'csrf:{stamp}:{user}').rstrip('=')}"

    def check_ticket(self, ticket: str, *, kind: str = "") -> str | None:
        """The user of a valid, unexpired ticket, else None."""
        if not ticket.startswith("PVE:") or "::" not in ticket:
            return None
        plain, _, sig = ticket.partition("::")
        if not hmac.compare_digest(sig, self._sign(plain)):
            return None
        body = plain[4:]
        if kind:
            if not body.startswith(kind):
                return None
            body = body[len(kind) :]
        elif body.startswith("!tfa!"):
            return None
        user, _, stamp = body.rpartition(":")
        try:
            issued = int(stamp, 16)
        except ValueError:
            return None
        age = self.clock.now() - issued
        lifetime = TFA_LIFETIME if kind else TICKET_LIFETIME
        if age > lifetime or age < -300:
            return None
        return user

    def check_csrf(self, token: str, user: str) -> bool:
        stamp, _, sig = token.partition(":")
        try:
            issued = int(stamp, 16)
        except ValueError:
            return False
        if self.clock.now() - issued > TICKET_LIFETIME:
            return False
        return hmac.compare_digest(sig, self._sign(f"csrf:{stamp}:{user}").rstrip("="))

    # -- login ------------------------------------------------------------------------------

    def _lookup(self, username: str, realm: str | None) -> User | None:
        userid = username if "@" in username or not realm else f"{username}@{realm}"
        return self.users.get(userid)

    def login(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /access/ticket``: password, ticket renewal, or a TFA challenge answer."""
        username = str(params.get("username", ""))
        password = str(params.get("password", ""))
        user = self._lookup(username, params.get("realm"))
        if user is None:
            raise SimHTTPError(401, "authentication failure")
        challenge = params.get("tfa-challenge")
        if challenge:
            who = self.check_ticket(str(challenge), kind="!tfa!")
            if who != user.userid or user.totp_secret is None:
                raise SimHTTPError(401, "authentication failure")
            kind, _, code = password.partition(":")
            if kind != "totp" or not self._totp_ok(user.totp_secret, code):
                raise SimHTTPError(401, "authentication failure")
            return self._grant(user)
        if password.startswith("PVE:"):
            # Renewal: a valid ticket of the same user is as good as the password.
            if self.check_ticket(password) != user.userid:
                raise SimHTTPError(401, "authentication failure")
            return self._grant(user)
        if not hmac.compare_digest(password.encode(), user.password.encode()):
            raise SimHTTPError(401, "authentication failure")
        if user.totp_secret is not None:
            otp = params.get("otp")
            if otp and self._totp_ok(user.totp_secret, str(otp)):
                return self._grant(user)
            return {
                "username": user.userid,
                "ticket": self._ticket(user.userid, "!tfa!"),
                "CSRFPreventionToken": self.csrf_token(user.userid),
                "NeedTFA": 1,
            }
        return self._grant(user)

    def _totp_ok(self, secret: str, code: str) -> bool:
        now = self.clock.now()
        # One step of drift either way, as real TOTP verifiers allow.
        return any(hmac.compare_digest(totp(secret, now + d), code.strip()) for d in (-30, 0, 30))

    def _grant(self, user: User) -> dict[str, Any]:
        return {
            "username": user.userid,
            "ticket": self._ticket(user.userid),
            "CSRFPreventionToken": self.csrf_token(user.userid),
            "clustername": self.cluster,
            "cap": self.capabilities(self.privs_of(user.userid)),
        }

    # -- request authentication -------------------------------------------------------------

    def authenticate(self, method: str, headers: Mapping[str, str]) -> Identity:
        """Identify a request from its headers, or raise PVE's 401."""
        authz = headers.get("Authorization", "")
        if authz.startswith("PVEAPIToken"):
            token = authz.split("=", 1)[1] if "=" in authz else ""
            tokenid, _, secret = token.partition("=")
            user, _, name = tokenid.partition("!")
            u = self.users.get(user)
            if (
                u is None
                or name not in u.tokens
                or not hmac.compare_digest(u.tokens[name], secret.strip())
            ):
                raise SimHTTPError(401, "authentication failure")
            return Identity(u.userid, name, self.privs_of(u.userid), via_ticket=False)
        ticket = _cookie(headers.get("Cookie", ""), "PVEAuthCookie")
        if ticket is None:
            raise SimHTTPError(401, "No ticket")
        who = self.check_ticket(ticket)
        if who is None or who not in self.users:
            # expired, forged or issued before expire_tickets()
            raise SimHTTPError(401, "permission denied - invalid PVE ticket")
        if method != "GET":
            csrf = headers.get("CSRFPreventionToken")
            if not csrf or not self.check_csrf(csrf, who):
                raise SimHTTPError(401, "Permission denied - invalid csrf token")
        return Identity(who, None, self.privs_of(who), via_ticket=True)

    # -- permissions ------------------------------------------------------------------------

    @staticmethod
    def capabilities(privs: frozenset[str]) -> dict[str, dict[str, int]]:
        groups: dict[str, str | tuple[str, ...]] = {
            "vms": "VM.",
            "storage": "Datastore.",
            "nodes": "Sys.",
            "sdn": "SDN.",
            "access": ("User.", "Group.", "Permissions.", "Realm."),
            "dc": ("Sys.Audit", "SDN."),
            "mapping": "Mapping.",
        }
        cap: dict[str, dict[str, int]] = {}
        for name, prefix in groups.items():
            cap[name] = {p: 1 for p in sorted(privs) if p.startswith(prefix)}
            # PVE lists Permissions.Modify under every object class it can be granted on.
            if name in ("vms", "storage", "nodes", "sdn") and "Permissions.Modify" in privs:
                cap[name]["Permissions.Modify"] = 1
        return cap

    def permissions(self, ident: Identity, path: str | None) -> dict[str, dict[str, int]]:
        """``GET /access/permissions``: path -> {privilege: 1}, from the ACL."""

        def on(p: str) -> dict[str, int]:
            return {priv: 1 for priv in sorted(self.privs_of(ident.authid, p))}

        paths = [
            "/",
            "/access",
            "/access/groups",
            "/nodes",
            "/pools",
            "/sdn",
            "/storage",
            "/vms",
            "/mapping",
        ]
        if path:
            return {path: on(path)}
        return {p: on(p) for p in paths}

    def check(
        self, ident: Identity, expr: Any, variables: Mapping[str, str], params: Mapping[str, Any]
    ) -> tuple[bool, str]:
        """Evaluate a schema permission expression; returns (ok, "path, priv" on failure)."""
        if expr is None:
            return True, ""
        if not isinstance(expr, Sequence) or isinstance(expr, str) or not expr:
            return True, ""
        op = expr[0]
        if op == "user":
            return True, ""
        if op == "perm":
            path = _subst(str(expr[1]), variables, params)
            privs = list(expr[2]) if len(expr) > 2 else []
            any_mode = len(expr) > 4 and expr[3] == "any" and bool(expr[4])
            have = [p in ident.privs for p in privs]
            ok = (any(have) if any_mode else all(have)) if privs else True
            if any_mode:
                return ok, f"{path}, {'|'.join(privs)}"
            missing = next((p for p, h in zip(privs, have, strict=True) if not h), "")
            return ok, f"{path}, {missing}"
        if op == "and":
            for sub in expr[1:]:
                ok, why = self.check(ident, sub, variables, params)
                if not ok:
                    return ok, why
            return True, ""
        if op == "or":
            why = ""
            for sub in expr[1:]:
                ok, why = self.check(ident, sub, variables, params)
                if ok:
                    return True, ""
            return False, why
        if op == "userid-param":
            return (
                params.get("userid") == ident.user or "User.Modify" in ident.privs,
                f"/access/users/{params.get('userid', '')}, User.Modify",
            )
        if op == "userid-group":
            ok = "User.Modify" in ident.privs
            return ok, "/access/groups, User.Modify"
        return "Sys.Modify" in ident.privs, "/, Sys.Modify"


def _cookie(header: str, name: str) -> str | None:
    from urllib.parse import unquote

    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return unquote(v.strip().strip('"'))
    return None


def _subst(path: str, variables: Mapping[str, str], params: Mapping[str, Any]) -> str:
    if "{" not in path:
        return path  # nothing to replace (a replacement needs a "{name}" in the path)
    out = path
    for k, v in {**{k: str(v) for k, v in params.items()}, **variables}.items():
        out = out.replace("{" + k + "}", v)
    return out
