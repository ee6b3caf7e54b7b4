"""The ``alexnet`` command line: argument parsing only; each verb calls one library function.

Each verb group lives in its own module here with a ``register(subparsers)`` function that adds its
parser(s) and sets ``func`` (a callable taking the parsed args and returning an exit code).  Heavy
imports (torch, ...) happen inside the handlers so that ``alexnet --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import AlexNetError

# Verb modules, in the order they appear in --help.
VERB_MODULES = ("model", "data", "train", "infer", "viz", "demo", "experiment", "convert", "bench", "serve")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps examples in descriptions as written and shows true defaults.

    A default argparse would print as "None" (decided at run time) or a switch's True/False says nothing a reader
    can use: those helps state their default in words themselves (``alexnet.cli.fields`` writes them)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is None or isinstance(action.default, bool) or action.nargs == 0:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alexnet", formatter_class=HelpFormatter,
        description="AlexNet (Krizhevsky, Sutskever & Hinton, NIPS 2012), faithful and fast.\n"
                    "Run `alexnet VERB --help` for each verb's options and an example.")
    parser.add_argument("--version", action="version", version=f"alexnet {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except AlexNetError as e:
        print(f"alexnet {args.verb}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"alexnet {args.verb}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `alexnet model paper | head`: the reader went away; stop quietly, as other command-line tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
