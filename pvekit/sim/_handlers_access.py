"""``/access`` login and what an identity may do: ticket, permissions, users, roles, domains.

The ACL, one user and API tokens are in ``_access``.
"""

from __future__ import annotations

from typing import Any

from ._auth import Identity
from ._errors import SimHTTPError
from ._handlers import Ctx, route
from ._state import _truthy

# -- access ---------------------------------------------------------------------------------


@route("POST", "/access/ticket")
def access_ticket(ctx: Ctx) -> Any:
    return ctx.auth.login(ctx.params)


@route("GET", "/access/ticket")
def access_ticket_get(ctx: Ctx) -> Any:
    return None


@route("GET", "/access/permissions")
def access_permissions(ctx: Ctx) -> Any:
    assert ctx.ident is not None
    userid = ctx.p("userid")
    ident = ctx.ident
    if userid and userid != ident.authid:
        if "Sys.Audit" not in ident.privs:
            raise SimHTTPError(403, "Permission check failed (/access, Sys.Audit)")
        base = userid.split("!")[0]
        user = ctx.auth.users.get(base)
        if user is None:
            raise SimHTTPError(500, f"no such user ('{userid}')")
        ident = Identity(base, None, ctx.auth.privs_of(base), via_ticket=False)
    return ctx.auth.permissions(ident, ctx.p("path"))


@route("GET", "/access/users")
def access_users(ctx: Ctx) -> Any:
    out = []
    for u in ctx.auth.users.values():
        row: dict[str, Any] = {
            "userid": u.userid,
            "enable": 1,
            "expire": 0,
            "realm-type": u.userid.split("@")[1],
        }
        if u.email:
            row["email"] = u.email
        if _truthy(ctx.p("full")):
            from ._access import token_rows

            row["tokens"] = token_rows(u)
        out.append(row)
    return out


@route("GET", "/access/roles")
def access_roles(ctx: Ctx) -> Any:
    from ._auth import ROLES

    return [
        {"roleid": r, "privs": ",".join(sorted(ctx.auth._role(r))), "special": 1} for r in ROLES
    ]


@route("GET", "/access/domains")
def access_domains(ctx: Ctx) -> Any:
    return [
        {"realm": "pam", "type": "pam", "comment": "Linux PAM standard authentication"},
        {"realm": "pve", "type": "pve", "comment": "Proxmox VE authentication server"},
    ]
