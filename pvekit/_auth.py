"""Authentication as Proxmox VE does it: API tokens and password tickets.

:class:`TokenAuth` adds ``Authorization: PVEAPIToken=USER@REALM!NAME=SECRET`` to every request.

:class:`TicketAuth` logs in with ``POST /access/ticket`` and then sends
``Cookie: PVEAuthCookie=<ticket>`` on every request and ``CSRFPreventionToken`` on writes only.
Tickets live two hours: the ticket is renewed after ``renew_after`` seconds (one hour by
default) by logging in again with the ticket as password; after a 401 the caller asks
:meth:`TicketAuth.refresh_after_401` for a fresh login. One lock guards the ticket, so many
threads that meet an expired ticket at once cause a single login.

Both are ``requests.auth.AuthBase`` objects; neither touches a cookie jar (a jar would end up
inside cached requests), and neither repr shows a secret.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.auth import AuthBase

from ._config import Secret
from ._errors import AuthenticationError, ConfigError, TwoFactorRequiredError

__all__ = ["TICKET_LIFETIME", "LoginPoster", "TicketAuth", "TokenAuth"]

#: Proxmox tickets are valid for two hours.
TICKET_LIFETIME = 7200.0
#: Renew the ticket after one hour, well before it expires.
DEFAULT_RENEW_AFTER = 3600.0
# A ticket older than this is surely dead: log in with the password instead of renewing.
_SAFE_MAX_AGE = TICKET_LIFETIME - 120.0

#: ``poster(form) -> data``: POST /access/ticket with ``form`` and return the unwrapped data;
#: raises pvekit errors (AuthenticationError on 401). Secret values of the form (password,
#: ticket, second factor) arrive as :class:`Secret` and are revealed only into the request
#: body, so no frame of the login path holds them in a local variable (an IPython verbose
#: traceback prints every local).
LoginPoster = Callable[[Mapping[str, "str | Secret"]], Any]

_WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})


class TokenAuth(AuthBase):
    """Stateless API-token authentication."""

    kind = "token"

    def __init__(self, token_id: str, secret: Secret) -> None:
        self.token_id = token_id
        self._secret = secret

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        secret = self._secret.reveal()
        if any(ch.isspace() or ord(ch) < 32 for ch in secret):
            # requests would reject the header and quote its value in the exception text.
            raise ConfigError(
                f"{self._secret.where or 'API token'} - the token secret contains whitespace "
                "or control characters (a stray newline from a file or command?)"
            )
        r.headers["Authorization"] = f"PVEAPIToken={self.token_id}={secret}"
        return r

    def __repr__(self) -> str:
        return f"TokenAuth({self.token_id!r})"


class TicketAuth(AuthBase):
    """Password login with ticket renewal, 401 recovery and optional TOTP second factor.

    ``poster`` performs the raw ``POST /access/ticket`` (the API client supplies it so the
    login goes through the same TLS checks, timeouts and error mapping). ``otp`` is a TOTP code
    (a :class:`Secret`) or a callable returning one; it is asked for only when Proxmox answers
    a login with ``NeedTFA``. ``clock`` is injectable for tests.
    """

    kind = "password"

    def __init__(
        self,
        user: str,
        password: Secret,
        poster: LoginPoster,
        *,
        otp: Secret | Callable[[], str] | None = None,
        renew_after: float = DEFAULT_RENEW_AFTER,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
        profile: str | None = None,
    ) -> None:
        self.user = user
        self.profile = profile
        self._password = password
        self._poster = poster
        self._otp = otp
        self.renew_after = float(renew_after)
        self._clock = clock
        self._log = logger or logging.getLogger("pvekit.auth")
        self._lock = threading.RLock()
        self._ticket: str | None = None
        self._csrf: str | None = None
        self._obtained = 0.0
        #: how many logins (full or renewal) this object performed; tests count on it
        self.logins = 0

    def __repr__(self) -> str:
        state = "logged in" if self._ticket else "not logged in"
        return f"TicketAuth({self.user!r}, {state})"

    # -- requests hook ------------------------------------------------------------------------

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        ticket, csrf = self.credentials()
        r.headers["Cookie"] = f"PVEAuthCookie={ticket}"
        if (r.method or "GET").upper() in _WRITE_METHODS:
            r.headers["CSRFPreventionToken"] = csrf
        else:
            r.headers.pop("CSRFPreventionToken", None)
        return r

    # -- ticket management --------------------------------------------------------------------

    @property
    def logged_in(self) -> bool:
        """True once a ticket is held (it may still be refused by the server later)."""
        return self._ticket is not None

    @property
    def age(self) -> float | None:
        """Seconds since the current ticket was obtained, or ``None``."""
        return None if self._ticket is None else self._clock() - self._obtained

    def credentials(self) -> tuple[str, str]:
        """A valid (ticket, CSRF token), logging in or renewing first when needed."""
        with self._lock:
            if self._ticket is None:
                self._login()
            else:
                age = self._clock() - self._obtained
                if age >= _SAFE_MAX_AGE:
                    self._log.debug("ticket of %s is %.0f s old: logging in again", self.user, age)
                    self._login()
                elif age >= self.renew_after:
                    self._renew()
            assert self._ticket is not None and self._csrf is not None
            return self._ticket, self._csrf

    def login(self) -> None:
        """Log in now (with the password), replacing any ticket held."""
        with self._lock:
            self._login()

    def refresh_after_401(self, cookie_header: str | None) -> None:
        """The server refused the ticket sent in ``cookie_header``: log in again once.

        If another thread already replaced that ticket, nothing is done, so a burst of 401s
        for one expired ticket causes one login.
        """
        with self._lock:
            current = f"PVEAuthCookie={self._ticket}" if self._ticket else None
            if cookie_header is not None and cookie_header != current:
                return
            self._log.debug("ticket of %s refused (401): logging in again", self.user)
            self._ticket = None
            self._login()

    def clear(self) -> None:
        """Forget the ticket; the next request logs in."""
        with self._lock:
            self._ticket = None
            self._csrf = None

    def _store(self, data: Any) -> None:
        if not isinstance(data, Mapping) or not data.get("ticket"):
            raise AuthenticationError(
                f"login as {self.user} returned no ticket",
                method="POST",
                path="/access/ticket",
                profile=self.profile,
            )
        csrf = data.get("CSRFPreventionToken")
        self._ticket = str(data["ticket"])
        self._csrf = str(csrf) if csrf else ""
        self._obtained = self._clock()
        self.logins += 1

    def _renew(self) -> None:
        assert self._ticket is not None
        self._log.debug("renewing ticket of %s", self.user)
        try:
            data = self._poster({"username": self.user, "password": Secret(value=self._ticket)})
        except AuthenticationError:
            # The ticket died early (server restart, key rotation): use the password.
            self._log.debug("ticket renewal for %s refused: logging in again", self.user)
            self._login()
            return
        if isinstance(data, Mapping) and data.get("NeedTFA"):
            self._login()
            return
        self._store(data)

    def _login(self) -> None:
        self._ticket = None
        self._csrf = None
        try:
            data = self._poster({"username": self.user, "password": self._password})
        except AuthenticationError as exc:
            raise AuthenticationError(
                f"login as {self.user} refused: {exc.reason or exc.message}",
                method="POST",
                path="/access/ticket",
                status=exc.status,
                reason=exc.reason,
                profile=exc.profile,
            ) from None
        if isinstance(data, Mapping) and data.get("NeedTFA"):
            data = self._second_factor(data)
        self._store(data)

    def _otp_code(self) -> str | None:
        otp = self._otp
        if otp is None:
            return None
        if isinstance(otp, Secret):
            return otp.reveal(fresh=True).strip()
        code = otp()
        return None if code is None else str(code).strip()

    def _second_factor(self, first: Mapping[str, Any]) -> Any:
        challenge = first.get("ticket")
        code = self._otp_code()
        if not code:
            raise TwoFactorRequiredError(
                f"user {self.user} must complete two-factor authentication: pass otp='123456' "
                "(a TOTP code) or otp=<callable returning one> to connect(), or set otp_command "
                "in the profile",
                method="POST",
                path="/access/ticket",
                status=401,
                profile=self.profile,
            )
        if not challenge:
            raise AuthenticationError(
                "Proxmox asked for a second factor but sent no challenge",
                method="POST",
                path="/access/ticket",
                profile=self.profile,
            )
        # PVE >= 7: answer the signed challenge with "<type>:<code>" as the password.
        try:
            data = self._poster(
                {
                    "username": self.user,
                    "tfa-challenge": str(challenge),
                    "password": Secret(value=f"totp:{code}"),
                }
            )
        except AuthenticationError as exc:
            raise AuthenticationError(
                f"second factor for {self.user} refused (wrong or expired TOTP code): "
                f"{exc.reason or exc.message}",
                method="POST",
                path="/access/ticket",
                status=exc.status,
                profile=exc.profile,
            ) from None
        if isinstance(data, Mapping) and data.get("NeedTFA"):
            raise TwoFactorRequiredError(
                f"second factor for {self.user} was not accepted",
                method="POST",
                path="/access/ticket",
                status=401,
                profile=self.profile,
            )
        return data
