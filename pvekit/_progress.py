"""Where progress goes: a tqdm bar where someone watches it (a notebook, a terminal), one log
line per step everywhere else.

A bar redraws itself with carriage returns: in a script whose stderr is a pipe or a file that
is dozens of frames of noise per wait. There the same progress goes to the ``pvekit.progress``
logger at INFO, one line per step (a finished fan-out of requests, a new line of a task's
log, the task's end), which a script sees once it configures logging.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["LOGGER", "interactive", "mode"]

LOGGER = logging.getLogger("pvekit.progress")


def interactive() -> bool:
    """True inside a Jupyter kernel or on a terminal: where a progress bar helps."""
    shell = sys.modules.get("IPython")
    if shell is not None:
        try:
            ip = shell.get_ipython()
        except Exception:
            ip = None
        if ip is not None and getattr(ip, "kernel", None) is not None:
            return True
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def mode(progress: bool | None) -> str:
    """``"bar"``, ``"log"`` or ``"off"`` for a ``progress`` argument.

    ``None`` (the default everywhere): a bar when :func:`interactive`, else log lines.
    ``True``: a bar even in a pipe (asked for); ``False``: nothing.
    """
    if progress is None:
        return "bar" if interactive() else "log"
    return "bar" if progress else "off"
