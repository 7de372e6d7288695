"""Where the tests' reference data lives: inside the repository, so a plain clone tests itself.

``tests/data/pve-api`` is the official Proxmox VE API schema (the 9.1 apidoc tree, gzipped, and
the flat 9.1 / 8.4 endpoint lists); ``tests/data/pve-fixtures`` holds real response bodies with
their provenance (MANIFEST.tsv) and what they teach (QUIRKS.md). See ``tests/data/README.md``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
FIXTURES = DATA / "pve-fixtures"
SCHEMA_DIR = DATA / "pve-api"
OFFICIAL_SCHEMA = SCHEMA_DIR / "pve-api-schema-9.1.json.gz"
ENDPOINTS_91 = SCHEMA_DIR / "endpoints-9.1.tsv"
ENDPOINTS_84 = SCHEMA_DIR / "endpoints-8.4.tsv"


def official_schema() -> list[dict[str, Any]]:
    """The official apidoc tree (a list of root nodes)."""
    with gzip.open(OFFICIAL_SCHEMA, "rt", encoding="utf-8") as fh:
        tree: list[dict[str, Any]] = json.load(fh)
    return tree
