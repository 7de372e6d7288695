"""Fault injection: latency, error rates, dropped connections, per path pattern.

Rules are matched in the order they were added; every matching rule applies (latencies add
up, the first rule that decides to fail wins). Random decisions come from a generator seeded
with the simulator seed and the rule's own counter, so a test that makes the same requests
sees the same faults. Everything is bounded: latency per request is capped at
:data:`MAX_LATENCY` seconds and a rule can be limited to ``times`` hits.

Examples::

    c.faults.latency(0.2, jitter=0.05)                  # every request
    c.faults.errors(0.5, statuses=(502, 503), pattern="/cluster/resources")
    c.faults.drop(1.0, pattern="/nodes/*/qemu/*/status/current", times=2)
    c.faults.fail_tasks("qmstart", "start failed: QEMU exited with code 1")
    c.faults.slow_tasks(30.0, task_type="vzdump")
    c.faults.clear()
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._model import stable_key

if TYPE_CHECKING:  # pragma: no cover
    from ._state import TaskPolicy

__all__ = ["MAX_LATENCY", "FaultDecision", "FaultRule", "Faults", "FaultsGroup"]

MAX_LATENCY = 30.0

_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    595: "Connection timed out",
}


@dataclass
class FaultRule:
    """One injected fault; ``pattern`` is a glob (``*`` spans one path segment, ``**`` any)
    or a compiled regular expression matched against the path below ``/api2/json``."""

    pattern: str | re.Pattern[str] = "**"
    methods: frozenset[str] | None = None
    latency: float = 0.0
    jitter: float = 0.0
    error_rate: float = 0.0
    statuses: tuple[int, ...] = (500,)
    message: str | None = None
    drop_rate: float = 0.0
    times: int | None = None
    hits: int = 0
    _rx: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.pattern, re.Pattern):
            self._rx = self.pattern
        else:
            pat = (
                self.pattern
                if self.pattern.startswith("/") or self.pattern.startswith("*")
                else "/" + self.pattern
            )
            # fnmatch's "*" crosses "/"; make "*" one segment and "**" anything.
            rx = fnmatch.translate(pat.replace("**", "\x00"))
            rx = rx.replace(".*", "[^/]*").replace("\x00", ".*")
            self._rx = re.compile(rx)
        for v in (self.error_rate, self.drop_rate):
            if not 0.0 <= v <= 1.0:
                raise ValueError("fault rates are probabilities between 0 and 1")
        if self.latency < 0 or self.jitter < 0:
            raise ValueError("latency and jitter must be >= 0")

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method.upper() not in self.methods:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        assert self._rx is not None
        return bool(self._rx.fullmatch(path))


@dataclass
class FaultDecision:
    """What to do with one request."""

    delay: float = 0.0
    status: int | None = None
    reason: str = ""
    drop: bool = False


class Faults:
    """The fault rules of one simulated cluster (thread-safe)."""

    def __init__(self, seed: int = 0, name: str = "", policy: TaskPolicy | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rng = random.Random(stable_key("faults", name, seed))
        self._seed = seed
        self._name = name
        self._policy = policy

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def add(self, rule: FaultRule) -> FaultRule:
        """Add a rule and return it (keep it to remove it later)."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r is not rule]

    def clear(self) -> None:
        """Remove every rule and forced task duration/outcome."""
        with self._lock:
            self._rules.clear()
            self._rng = random.Random(stable_key("faults", self._name, self._seed))
        if self._policy is not None:
            self._policy.fault_durations.clear()
            self._policy.fault_outcomes.clear()

    # -- convenience constructors ----------------------------------------------------------

    def latency(
        self,
        seconds: float,
        jitter: float = 0.0,
        pattern: str = "**",
        methods: tuple[str, ...] | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Delay matching requests by ``seconds`` +- ``jitter``."""
        return self.add(
            FaultRule(pattern, _methods(methods), latency=seconds, jitter=jitter, times=times)
        )

    def errors(
        self,
        rate: float = 1.0,
        statuses: tuple[int, ...] = (500, 502, 503),
        pattern: str = "**",
        message: str | None = None,
        methods: tuple[str, ...] | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Answer a fraction ``rate`` of matching requests with one of ``statuses``."""
        return self.add(
            FaultRule(
                pattern,
                _methods(methods),
                error_rate=rate,
                statuses=tuple(statuses),
                message=message,
                times=times,
            )
        )

    def drop(
        self,
        rate: float = 1.0,
        pattern: str = "**",
        methods: tuple[str, ...] | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Close the connection without an answer for a fraction ``rate`` of requests."""
        return self.add(FaultRule(pattern, _methods(methods), drop_rate=rate, times=times))

    def slow_tasks(self, seconds: float, task_type: str = "*") -> None:
        """Make tasks of ``task_type`` (``"*"``: all) take ``seconds`` (``math.inf``: never
        end on their own)."""
        if self._policy is None:
            raise RuntimeError("no task policy attached")
        self._policy.fault_durations[task_type] = float(seconds)

    def fail_tasks(self, task_type: str = "*", message: str = "command failed") -> None:
        """Make tasks of ``task_type`` end with error ``message`` (or ``"WARNINGS: n"``)."""
        if self._policy is None:
            raise RuntimeError("no task policy attached")
        self._policy.fault_outcomes[task_type] = message

    # -- evaluation -------------------------------------------------------------------------

    def decide(self, method: str, path: str) -> FaultDecision:
        """The combined effect of every matching rule for one request."""
        decision = FaultDecision()
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                rule.hits += 1
                if rule.latency or rule.jitter:
                    j = (self._rng.random() * 2 - 1) * rule.jitter
                    decision.delay += max(0.0, rule.latency + j)
                if decision.status is None and not decision.drop:
                    if rule.drop_rate and self._rng.random() < rule.drop_rate:
                        decision.drop = True
                    elif rule.error_rate and self._rng.random() < rule.error_rate:
                        status = rule.statuses[self._rng.randrange(len(rule.statuses))]
                        decision.status = status
                        decision.reason = rule.message or _REASONS.get(status, "error")
        decision.delay = min(decision.delay, MAX_LATENCY)
        return decision


def _methods(methods: tuple[str, ...] | None) -> frozenset[str] | None:
    return frozenset(m.upper() for m in methods) if methods else None


class FaultsGroup:
    """The same faults on every cluster of a simulator (``sim.faults``).

    Each method applies to every cluster's :class:`Faults` and returns the rules it added
    (one per cluster), so a test can inject simulator-wide latency or errors in one line.
    """

    def __init__(self, members: list[Faults]) -> None:
        self._members = members

    def latency(
        self,
        seconds: float,
        jitter: float = 0.0,
        pattern: str = "**",
        methods: tuple[str, ...] | None = None,
        times: int | None = None,
    ) -> list[FaultRule]:
        return [f.latency(seconds, jitter, pattern, methods, times) for f in self._members]

    def errors(
        self,
        rate: float = 1.0,
        statuses: tuple[int, ...] = (500, 502, 503),
        pattern: str = "**",
        message: str | None = None,
        methods: tuple[str, ...] | None = None,
        times: int | None = None,
    ) -> list[FaultRule]:
        return [f.errors(rate, statuses, pattern, message, methods, times) for f in self._members]

    def drop(
        self,
        rate: float = 1.0,
        pattern: str = "**",
        methods: tuple[str, ...] | None = None,
        times: int | None = None,
    ) -> list[FaultRule]:
        return [f.drop(rate, pattern, methods, times) for f in self._members]

    def slow_tasks(self, seconds: float, task_type: str = "*") -> None:
        for f in self._members:
            f.slow_tasks(seconds, task_type)

    def fail_tasks(self, task_type: str = "*", message: str = "command failed") -> None:
        for f in self._members:
            f.fail_tasks(task_type, message)

    def clear(self) -> None:
        for f in self._members:
            f.clear()
