"""What every part of the ``keras-conformance`` command shares: exit statuses, one-line usage errors, options.

The command is ``conformance.cli``; each subsystem's own commands live beside it (``history/cli.py``,
``models/cli.py``, ``quality/cli.py``, ``bench/cli.py``) and import these from here, never from
``conformance.cli`` (which runs as ``__main__`` under ``python -m``, a module of its own).
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from conformance.backends import impls

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad input; the message is one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + traceback
        raise UsageError(f"{message} (see {self.prog} --help)")


def chosen_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the deepest command on the command line (``models check``), so that a message can name it."""
    while True:
        commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, commands[0].dest, None) if commands else None
        if name is None:
            return parser
        parser = commands[0].choices[name]


def add_impl_option(parser: argparse.ArgumentParser) -> None:
    """The one-implementation --impl option of selfcheck, fingerprint and flakes."""
    parser.add_argument("--impl", metavar="ID", choices=list(impls.IMPLS),
                        help=f"implementation (default ${impls.ENV_VAR} or {impls.DEFAULT_IMPL})")


def add_keyword_option(parser: argparse.ArgumentParser, what: str) -> None:
    """The -k option of run, selfcheck and flakes, passed on to pytest."""
    parser.add_argument("-k", dest="keyword", metavar="EXPR", help=f"only {what} matching this pytest -k expression")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value
