"""The simulator's clock: real time plus an offset that tests can advance."""

from __future__ import annotations

import threading
import time

__all__ = ["SimClock"]


class SimClock:
    """Wall-clock time that can be moved forward.

    Tickets, TOTP codes, task progress and metrics all read :meth:`now`, so a test can expire a
    ticket or finish a long task with :meth:`advance` instead of sleeping. With ``frozen=True``
    time only moves through :meth:`advance`, which makes every answer reproducible.
    """

    def __init__(self, start: float | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._frozen = frozen
        base = time.time()
        self._offset = 0.0 if start is None else start - base
        self._frozen_at = base + self._offset

    def now(self) -> float:
        """Current simulated time, seconds since the epoch."""
        with self._lock:
            if self._frozen:
                return self._frozen_at
            return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("the simulator clock only moves forward")
        with self._lock:
            self._offset += seconds
            self._frozen_at += seconds
        return self.now()

    def __repr__(self) -> str:
        return f"SimClock(now={self.now():.0f}, frozen={self._frozen})"
