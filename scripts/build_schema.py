#!/usr/bin/env python3
"""Derive the compact API schema shipped in ``pvekit/_data/schema.json.gz``.

The official schema (``tests/data/pve-api/pve-api-schema-9.1.json.gz``, 2 MB unpacked) is the
apidoc tree behind Proxmox's API viewer. pvekit needs only what it takes to route and validate
a request: paths, methods, parameter names with their type, optionality, enum, bounds, pattern,
simple named formats and the keys of property-string formats, the permission check and whether
the call is proxied to a node. Descriptions and return schemas are dropped, which keeps the file
small enough to ship and fast to load.

The PVE 8.4 flat view (``endpoints-8.4.tsv``) is folded in as version markers: endpoints and
parameters that 8.4 lacks are tagged ``"since": 9``; endpoints only 8.4 has are kept with
string-typed parameters and ``"until": 9``.

Run: ``python scripts/build_schema.py [--source DIR] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT / "tests" / "data" / "pve-api"
DEFAULT_OUT = ROOT / "pvekit" / "_data" / "schema.json.gz"

# Scalar keys copied from a parameter definition, renamed to short keys.
_KEYS = {
    "type": "t",
    "enum": "e",
    "minimum": "min",
    "maximum": "max",
    "pattern": "re",
    "maxLength": "ml",
    "minLength": "nl",
    "requires": "req",
    "default": "d",
}


def _compact_param(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, short in _KEYS.items():
        if key in spec:
            out[short] = spec[key]
    if spec.get("optional"):
        out["o"] = 1
    fmt = spec.get("format")
    if isinstance(fmt, str):
        out["f"] = fmt
    elif isinstance(fmt, dict):
        # Property-string format ("key=value,key=value"): keep the keys, which key may be
        # given without its name, and each key's enum so values can be checked cheaply.
        keys: dict[str, Any] = {}
        for name, sub in fmt.items():
            entry: dict[str, Any] = {}
            if sub.get("default_key"):
                entry["dk"] = 1
            if "enum" in sub:
                entry["e"] = sub["enum"]
            if sub.get("alias"):
                entry["a"] = sub["alias"]
            keys[name] = entry
        out["pf"] = keys
    if spec.get("type") == "array" and isinstance(spec.get("items"), dict):
        items = spec["items"]
        out["it"] = items.get("type", "string")
    return out


def _walk(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("children") or []:
        yield from _walk(child)


def _read_tsv(path: Path) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) < 4:
            continue
        names = {p.rstrip("*") for p in parts[3].split(",") if p}
        out[(parts[0], parts[1])] = names
    return out


def build(source: Path) -> dict[str, Any]:
    """Return the compact schema as a JSON-ready dict."""
    # The repository keeps the tree gzipped; a plain copy (as Proxmox publishes it) works too.
    plain = source / "pve-api-schema-9.1.json"
    if plain.exists():
        tree = json.loads(plain.read_text())
    else:
        with gzip.open(source / "pve-api-schema-9.1.json.gz", "rt", encoding="utf-8") as fh:
            tree = json.load(fh)
    v84 = _read_tsv(source / "endpoints-8.4.tsv")
    paths: dict[str, dict[str, Any]] = {}
    for root in tree:
        for node in _walk(root):
            info = node.get("info") or {}
            if not info:
                continue
            methods: dict[str, Any] = {}
            for method, call in info.items():
                params_def = call.get("parameters") or {}
                props = params_def.get("properties") or {}
                entry: dict[str, Any] = {
                    "p": {name: _compact_param(spec) for name, spec in props.items()},
                }
                if params_def.get("additionalProperties", 0):
                    entry["add"] = 1
                perm = call.get("permissions")
                if isinstance(perm, dict):
                    if "check" in perm:
                        entry["perm"] = perm["check"]
                    elif perm.get("user"):
                        entry["perm"] = ["user", perm["user"]]
                if call.get("proxyto"):
                    entry["px"] = call["proxyto"]
                if call.get("protected"):
                    entry["prot"] = 1
                old = v84.get((node["path"], method))
                if old is None:
                    entry["since"] = 9
                else:
                    for name, spec in entry["p"].items():
                        if name not in old and name.replace("[n]", "") not in old:
                            spec["since"] = 9
                    for name in sorted(old - set(entry["p"])):
                        entry["p"][name] = {"t": "string", "o": 1, "until": 9}
                methods[method] = entry
            paths[node["path"]] = methods
    # Endpoints that PVE 8.4 has and 9.1 dropped: routable only under pve_version 8.x.
    for (path, method), names in v84.items():
        methods = paths.setdefault(path, {})
        if method not in methods:
            methods[method] = {
                "p": {n: {"t": "string", "o": 1} for n in names},
                "until": 9,
                "px": "node" if path.startswith("/nodes/{node}") else None,
            }
            if methods[method]["px"] is None:
                del methods[method]["px"]
    return {"source": "pve-api-schema-9.1.json + endpoints-8.4.tsv", "paths": paths}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    data = build(args.source)
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the file byte-identical between runs (clean diffs).
    with args.out.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(raw)
    n = sum(len(m) for m in data["paths"].values())
    print(
        f"{args.out}: {len(data['paths'])} paths, {n} endpoints, "
        f"{len(raw)} bytes JSON, {args.out.stat().st_size} bytes gzip"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
