#!/usr/bin/env python3
"""Derive the return types of every GET from the official schema: ``pvekit/_data/returns.json``.

The simulator answers a GET it does not model in the shape the schema documents (an empty
object for ``object``, an empty list for ``array``, ``null`` for ``null``) and 501 for the
rest, so an un-modelled endpoint never answers data of the wrong type. The compact schema
(``scripts/build_schema.py``) drops return schemas; this small table keeps just the type.

Source: the flat views ``endpoints-9.1.tsv`` and ``endpoints-8.4.tsv`` (path, method, name,
parameters, returns). Run: ``python scripts/build_returns.py [--source DIR] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT / "tests" / "data" / "pve-api"
DEFAULT_OUT = ROOT / "pvekit" / "_data" / "returns.json"


def _type(returns: str) -> str:
    # "array<object>" -> "array"; an empty cell is an undocumented return ("").
    return returns.split("<", 1)[0].strip()


def build(source: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for version in ("9.1", "8.4"):
        table: dict[str, str] = {}
        with (source / f"endpoints-{version}.tsv").open(newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row["method"] == "GET":
                    table[row["path"]] = _type(row["returns"] or "")
        out[version.split(".")[0]] = dict(sorted(table.items()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    data = build(args.source)
    args.out.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    print(f"{args.out}: {sum(len(t) for t in data.values())} GET return types")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
