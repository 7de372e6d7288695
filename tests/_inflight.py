"""A probe on a simulated cluster's handler: how many config reads it serves at once."""

from __future__ import annotations

import threading
import time
from typing import Any


class InFlight:
    """Wraps a simulated cluster's handler: counts the config reads it handles at once and
    (optionally) makes each one take ``delay`` seconds, like a server far away."""

    def __init__(self, sim_cluster: Any, delay: float = 0.0) -> None:
        self.delay = delay
        self.now = 0
        self.peak = 0
        self.handled = 0
        self._lock = threading.Lock()
        self._inner = sim_cluster.handle
        sim_cluster.handle = self

    def __call__(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if not path.endswith("/config"):
            return self._inner(method, path, *args, **kwargs)
        with self._lock:
            self.now += 1
            self.handled += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.delay:
                time.sleep(self.delay)
            return self._inner(method, path, *args, **kwargs)
        finally:
            with self._lock:
                self.now -= 1
