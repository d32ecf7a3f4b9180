"""The ``minissd`` command (also ``python -m minissd``).

One module per sub-command (``demo``, ``train``, ``evaluate`` for ``eval``,
``analyze``, ``detect``, ``explain``, ``convert``, ``boxes``, ``anchors``), each
with an ``add(commands)`` that declares its
options and a ``run(args)`` that does the work; heavy imports happen inside
``run`` so ``minissd --help`` is instant. The shared pieces: ``options`` (value
types, checked while parsing; option groups), ``errors`` (the one-line error
rule and the exit codes), ``outputs`` (output paths checked before any work),
``datasets`` (datasets from the dataset options).
"""

from __future__ import annotations

import sys
import warnings

from .. import __version__
from . import analyze, anchors, boxes, convert, demo, detect, evaluate, explain, train
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, UsageError, UserError, debug_requested, one_line
from .options import Parser, add_common

COMMANDS = [demo, train, evaluate, analyze, detect, explain, convert, boxes, anchors]

__all__ = ["UserError", "build_parser", "main"]


def build_parser() -> Parser:
    parser = Parser(
        prog="minissd",
        description="minissd: SSD (Single Shot MultiBox Detector) from scratch in NumPy / CuPy.",
        epilog="Errors are one line 'minissd COMMAND: error: ...' with exit status 1 (2 for a malformed "
               "command line); --debug shows the traceback.",
    )
    parser.add_argument("--version", action="version", version=f"minissd {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        sub = command.add(commands)
        add_common(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    previous = warnings.showwarning
    warnings.showwarning = _one_line_warning(args.command)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(f"minissd {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the rule: one line, never a traceback (unless asked for)
        if debug_requested(args):
            raise
        print(f"minissd {args.command}: error: {one_line(error)}", file=sys.stderr, flush=True)
        code = EXIT_USAGE if isinstance(error, UsageError) else EXIT_ERROR
        _stop_the_other_processes(code)
        return code
    finally:
        warnings.showwarning = previous


def _one_line_warning(command: str):
    """Warnings (a skipped sample, say) as 'minissd COMMAND: warning: ...', without the source line."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"minissd {command}: warning: {' '.join(str(message).split())}", file=file or sys.stderr)

    return show


def _stop_the_other_processes(code: int) -> None:
    """In a job of several processes (mpiexec), one that fails must stop the rest, or they wait forever."""
    from ..distributed import launched_size

    if launched_size() > 1:
        try:
            from mpi4py import MPI
        except ImportError:
            return
        MPI.COMM_WORLD.Abort(code)
