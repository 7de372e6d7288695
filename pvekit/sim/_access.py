"""``/access`` endpoints beyond login: the ACL, one user, API tokens.

Users, tokens, ACL entries and roles live in :class:`~pvekit.sim._auth.AuthDB`; these
handlers only show them, so ``/access/acl``, ``/access/users``, ``/access/roles`` and
``/access/permissions`` always agree with what a request is allowed to do.
"""

from __future__ import annotations

from typing import Any

from ._auth import User
from ._errors import SimHTTPError
from ._handlers import Ctx, route

__all__ = ["token_rows"]


def token_rows(user: User) -> list[dict[str, Any]]:
    """The ``tokens`` of ``/access/users?full=1`` rows (never the secret)."""
    return [{"tokenid": name, "expire": 0, "privsep": 0} for name in sorted(user.tokens)]


def _user(ctx: Ctx) -> User:
    user = ctx.auth.users.get(ctx.vars["userid"])
    if user is None:
        raise SimHTTPError(500, f"no such user ('{ctx.vars['userid']}')")
    return user


@route("GET", "/access/acl")
def access_acl(ctx: Ctx) -> Any:
    assert ctx.ident is not None
    # PVE lists the entries on paths where the caller has Sys.Audit or Permissions.Modify.
    if not ctx.ident.privs & {"Sys.Audit", "Permissions.Modify"}:
        return []
    return [
        {
            "path": e.path,
            "type": e.type,
            "ugid": e.ugid,
            "roleid": e.roleid,
            "propagate": int(e.propagate),
        }
        for e in ctx.auth.acl
    ]


@route("GET", "/access/users/{userid}")
def access_user(ctx: Ctx) -> Any:
    user = _user(ctx)
    out: dict[str, Any] = {
        "enable": 1,
        "expire": 0,
        "groups": [],
        "tokens": {t["tokenid"]: {"expire": 0, "privsep": 0} for t in token_rows(user)},
    }
    if user.email:
        out["email"] = user.email
    return out


@route("GET", "/access/users/{userid}/token")
def access_user_tokens(ctx: Ctx) -> Any:
    return token_rows(_user(ctx))


@route("GET", "/access/users/{userid}/token/{tokenid}")
def access_user_token(ctx: Ctx) -> Any:
    user = _user(ctx)
    if ctx.vars["tokenid"] not in user.tokens:
        raise SimHTTPError(500, f"no such token '{ctx.vars['tokenid']}' for user '{user.userid}'")
    return {"expire": 0, "privsep": 0}
