"""The ``pvekit`` command: ``pvekit report ...``, ``pvekit collect ...`` and ``pvekit sim ...``.

Each subcommand lives with the module it drives: that module provides
``add_arguments(parser)`` and ``run(args) -> int``; this file only dispatches, so importing it
stays cheap and ``pvekit --help`` does not load pandas or plotly.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help)
_COMMANDS: dict[str, tuple[str, str]] = {
    "report": ("pvekit.report", "build the HTML capacity report"),
    "collect": ("pvekit.history._cli", "collect inventory snapshots into a history store"),
    "sim": ("pvekit.sim", "serve the embedded Proxmox VE simulator"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="pvekit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Only the chosen subcommand's module is imported; the others get a bare parser for help.
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    for name, (module_name, help_text) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module_name).add_arguments(p)
    args = parser.parse_args(args_list)
    if args.version:
        from pvekit import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(_COMMANDS[args.command][0])
    from pvekit import PVEError

    try:
        return int(module.run(args))
    except PVEError as exc:
        print(f"pvekit {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
