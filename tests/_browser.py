"""How the browser tests and ``scripts/screenshots.py`` start Debian's Chromium.

Never a downloaded browser; the background-networking flags matter on a closed network, where
Chromium's own connections would otherwise be refused many at a time.
"""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
