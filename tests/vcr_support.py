"""vcrpy configuration for pvekit cassettes: record from the simulator, replay offline.

Cassettes live in ``cassettes/`` at the repository root; ``scripts/record_cassettes.py``
records them (see its docstring for the command) and ``tests/test_cassettes.py`` replays them
with record mode ``none``, so a replay can never reach the network.

Why cache=False: vcrpy cannot record or replay through a requests-cache ``CachedSession``
(vcrpy issue 881: ``'VCRHTTPResponse' object has no attribute '_request_url'``). Cassettes are
therefore recorded and replayed with ``pvekit.connect(..., cache=False)``, which uses a plain
``requests.Session``; the cache itself is tested against the live simulator instead
(``tests/test_inventory.py``).

Scrubbing: before anything is written, requests lose ``Cookie``, ``CSRFPreventionToken`` and
``Authorization`` values and any password/OTP/secret form field; responses lose
``Set-Cookie`` and the ``ticket`` / ``CSRFPreventionToken`` of the ``/access/ticket`` body,
and every body goes through :func:`pvekit._errors.redact` as a last guard.
:func:`find_secrets` is what the tests use to prove a cassette (or any text) is clean.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import vcr

from pvekit._errors import redact

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"

#: Well-formed stand-ins so a replayed login still yields a usable (fake) ticket.
FAKE_TICKET = "PVE:root@pam:00000000::REDACTED"
FAKE_CSRF = "00000000:REDACTED"
#: Credentials a replay uses; they never reach any server (record mode "none").
REPLAY_KWARGS: dict[str, Any] = {
    "host": "http://127.0.0.1:8006",
    "user": "root@pam",
    "password": "replay-only",
    "cache": False,
    "check": False,
    "retries": 0,
}

_SECRET_HEADERS = ("cookie", "csrfpreventiontoken", "authorization")
_SECRET_FIELDS = {"password", "new-password", "otp", "tfa-challenge", "token_value", "secret"}

_TICKET_RE = re.compile(r"PVE(?:VNC)?:[^\s\"';&]*::[A-Za-z0-9+/=]{16,}")
_CSRF_RE = re.compile(r"\b[0-9A-F]{8}:[A-Za-z0-9+/]{20,}")
_TOKEN_HEADER_RE = re.compile(r"PVEAPIToken=[^=\s]+=[0-9a-fA-F-]{8,}")


def _scrub_form(body: str) -> str:
    try:
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return redact(body)
    return urlencode([(k, "***" if k.lower() in _SECRET_FIELDS else v) for k, v in pairs])


def scrub_request(request: Any) -> Any:
    """vcrpy ``before_record_request``: drop secrets from headers, body and query."""
    for name in list(request.headers):
        if name.lower() in _SECRET_HEADERS:
            request.headers[name] = "***"
    body = request.body
    if body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        request.body = _scrub_form(text).encode()
    if "?" in request.uri:
        base, _, query = request.uri.partition("?")
        request.uri = f"{base}?{_scrub_form(query)}"
    return request


def _scrub_json(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "ticket" and isinstance(item, str):
                out[key] = FAKE_TICKET
            elif key == "CSRFPreventionToken" and isinstance(item, str):
                out[key] = FAKE_CSRF
            elif key.lower() in _SECRET_FIELDS and isinstance(item, str):
                out[key] = "***"
            else:
                out[key] = _scrub_json(item)
        return out
    if isinstance(value, list):
        return [_scrub_json(v) for v in value]
    return value


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy ``before_record_response``: drop Set-Cookie and secrets in the body."""
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in ("set-cookie", *_SECRET_HEADERS):
            del headers[name]
    body = response.get("body", {}).get("string")
    if body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        with contextlib.suppress(ValueError):
            text = json.dumps(_scrub_json(json.loads(text)), separators=(",", ":"))
        response["body"]["string"] = redact(text).encode()
    return response


def make_vcr(record_mode: str = "none") -> vcr.VCR:
    """The one vcrpy configuration: match on method, path and query (never host/port, which
    are random per simulator run), scrub on record, replay repeats allowed (a table can ask
    the same path twice, e.g. a re-login)."""
    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode=record_mode,
        match_on=("method", "path", "query"),
        before_record_request=scrub_request,
        before_record_response=scrub_response,
        decode_compressed_response=True,
    )


def use_cassette(name: str, record_mode: str = "none") -> Any:
    """Context manager for cassette ``name`` (``cassettes/<name>.yaml``)."""
    return make_vcr(record_mode).use_cassette(f"{name}.yaml", allow_playback_repeats=True)


def find_secrets(text: str, known: Iterable[str] = ()) -> list[str]:
    """Every secret-looking string in ``text``: real tickets, CSRF tokens, API token headers,
    and any of the ``known`` secret values (passwords, token secrets) verbatim."""
    found = [m.group(0) for m in _TICKET_RE.finditer(text)]
    found += [m.group(0) for m in _CSRF_RE.finditer(text)]
    found += [m.group(0) for m in _TOKEN_HEADER_RE.finditer(text)]
    found += [s for s in known if s and len(s) >= 4 and s in text]
    return found


#: cassette name -> the call it records (on a Cluster); the replay tests call the same.
CALLS: dict[str, Callable[[Any], Any]] = {
    "nodes": lambda c: c.nodes(progress=False),
    "guests": lambda c: c.guests(),
    "guests_details": lambda c: c.guests(details=True, ips=True, progress=False),
    "storage": lambda c: c.storage(progress=False),
    "tasks": lambda c: c.tasks(limit=50, progress=False),
    "backups": lambda c: c.backups(progress=False),
    "snapshots": lambda c: c.snapshots(progress=False),
    "metrics_node": lambda c: c.metrics("node", timeframe="hour", progress=False),
    "metrics_guest": lambda c: c.metrics("guest", targets=[100, 146], progress=False),
    "summary": lambda c: c.summary(),
}
