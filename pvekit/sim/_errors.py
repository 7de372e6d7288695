"""The error a simulated handler raises to answer like Proxmox does."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SimHTTPError"]


class SimHTTPError(Exception):
    """An HTTP error answer: status, reason phrase and, for 400, per-parameter messages.

    PVE puts the message in the HTTP reason phrase and sends ``{"data": null}`` (400 adds
    ``"errors"``); the server turns this exception into exactly that.
    """

    def __init__(self, status: int, message: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = dict(errors) if errors else None


def param_error(errors: Mapping[str, str]) -> SimHTTPError:
    """PVE's 400 "Parameter verification failed." with its per-parameter messages."""
    return SimHTTPError(400, "Parameter verification failed.", errors)
