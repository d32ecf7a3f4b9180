"""``python -m minissd.bench <subcommand> [options]``; ``python -m minissd.bench <subcommand> --help``.

Without a subcommand (or with options only) the whole-network benchmark runs, as before the
benchmarks were gathered here: ``python -m minissd.bench --models ssd300`` is
``python -m minissd.bench network --models ssd300``.
"""

from __future__ import annotations

import importlib
import sys

from . import SUBCOMMANDS

DEFAULT = "network"


def usage() -> str:
    lines = ["usage: python -m minissd.bench <subcommand> [options]   (--help after a subcommand for its options)",
             "", "subcommands:"]
    lines += [f"  {name:<9} {text}" for name, text in SUBCOMMANDS.items()]
    lines += ["", f"With options only, the subcommand is {DEFAULT!r}."]
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"], ["help"]):
        print(usage())
        return None
    if not argv or argv[0].startswith("-"):
        argv = [DEFAULT] + argv
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"python -m minissd.bench: unknown subcommand {name!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    module = importlib.import_module(f"{__package__}.{name}")
    return module.main(rest)


if __name__ == "__main__":
    main()
