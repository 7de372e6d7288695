"""The in-process transport: a requests adapter that hands requests to a simulated cluster.

In the spirit of httpx's ``MockTransport``: no socket, no server thread, no TLS. The adapter
turns the prepared request into the raw pieces the HTTP front would have read (method,
target, headers, body bytes) and calls the same :func:`~pvekit.sim._dispatch.serve`, so
routing, validation, authentication, faults, state and the request log are identical to
the loopback server's. What needs a real connection (TLS, certificate pinning, client
timeouts, a third-party HTTP stack) uses the loopback server instead.

::

    sim = Simulator("demo")                    # not started: no port is opened
    cluster = pvekit.connect(**sim["prod"].connect_kwargs("root", inprocess=True))
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3 import HTTPResponse

from ._dispatch import Headers, serve

if TYPE_CHECKING:  # pragma: no cover
    from ._server import SimCluster

__all__ = ["SimTransport"]


class SimTransport(BaseAdapter):
    """A requests adapter serving every request from ``cluster`` in the calling thread.

    Mount it on a session for the cluster's :attr:`~SimCluster.inprocess_url` (what
    :meth:`SimCluster.session` does). Injected latency is slept in the caller; a dropped
    connection raises :class:`requests.ConnectionError`; ``timeout`` is not enforced (there
    is no connection to time out: use the loopback server for timeout tests).
    """

    def __init__(self, cluster: SimCluster) -> None:
        super().__init__()
        self.cluster = cluster
        self._builder = HTTPAdapter()  # only for build_response: cookies, encoding, url

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        split = urlsplit(request.url or "")
        target = split.path + (f"?{split.query}" if split.query else "")
        answer = serve(
            self.cluster,
            request.method or "GET",
            target,
            Headers(dict(request.headers)),
            _body_bytes(request.body),
        )
        if answer.drop:
            raise requests.ConnectionError(
                f"Connection aborted: the simulated cluster {self.cluster.name!r} dropped "
                "the connection (injected fault)",
                request=request,
            )
        raw = HTTPResponse(
            body=io.BytesIO(answer.body),
            headers=answer.headers,
            status=answer.status,
            reason=answer.reason,
            preload_content=False,
            decode_content=False,
            request_method=request.method,
            request_url=request.url,
        )
        resp = self._builder.build_response(request, raw)
        resp.connection = self  # type: ignore[assignment]  # requests types it as HTTPAdapter
        if not stream:
            _ = resp.content  # read now, as HTTPAdapter does for non-streamed answers
        return resp

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<SimTransport {self.cluster.name!r}>"


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in body)
