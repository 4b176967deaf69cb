"""The command line's own pieces: the parser (a usage error exits 64, the exit statuses in
--help, --debug on every command), value types of non-setting flags, and the check that an
--endpoint names a stored endpoint."""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import NoReturn

from redis import Redis

from diffsvc.errors import EXIT_CODES, EXIT_USAGE, UsageError
from diffsvc.storage import store


class Parser(argparse.ArgumentParser):
    """A usage error exits 64 (EX_USAGE), not argparse's 2 (which means inconclusive here)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def exit_codes() -> str:
    return "exit status:\n" + "\n".join(f"  {code:>3}  {meaning}"
                                         for code, meaning in EXIT_CODES.items())


def add_common(parser: argparse.ArgumentParser) -> None:
    """--debug on every (sub)command; SUPPRESS keeps a subcommand from resetting the top one."""
    default = argparse.SUPPRESS if parser.prog != "diffsvc" else False
    parser.add_argument("--debug", action="store_true", default=default,
                        help="print the traceback of an expected failure too")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                add_common(child)


def check_endpoint(r: Redis, name: str | None) -> None:
    """An --endpoint that names no stored endpoint is a usage error listing the known ones."""
    names = store.endpoint_names(r)
    if name is None or name in names:
        return
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    known = ", ".join(repr(n) for n in names) if names else "none yet (nothing compared)"
    raise UsageError(f"--endpoint {name!r} is not a known endpoint: {hint}known: {known}")


def run_name(text: str) -> str:
    if not text or not all(c.isalnum() or c in "-_." for c in text):
        raise argparse.ArgumentTypeError(f"letters, digits, '-', '_' and '.' only, got {text!r}")
    return text


def rate(text: str) -> float:
    """A mismatch rate from 0.01 or 1%."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a rate such as 0.01 or 1%, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (0% and 100%), got {text!r}")
    return value
