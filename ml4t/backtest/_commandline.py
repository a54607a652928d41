"""What every ``ml4t`` subcommand that prints a summary shares: the output flags, where
the words go, and old flag spellings kept as hidden aliases.

The flags mean the same everywhere (``run``, ``demo``, ``validate``, ``sweep``,
``replay``):

- ``-q/--quiet``: nothing on stdout; errors still go to stderr and the exit status says
  how it went. Logs drop to errors only.
- ``-v/--verbose``: logs at info on stderr (``-vv``: debug); the summary is unchanged.
- ``--json``: one JSON object on stdout (one line), the summary a script reads instead
  of the tables a person reads; the text output is not printed.

A subcommand adds them with :func:`add_output_flags` and prints through the
:class:`Output` that :meth:`Output.of` makes from its parsed arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from ml4t.backtest._time import to_ns
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.record.outputs import json_safe

__all__ = [
    "DeprecatedAlias",
    "Output",
    "add_output_flags",
    "log_level",
    "positive_int",
    "time_flag",
]


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``-q/--quiet``, ``-v/--verbose`` and ``--json`` to a subcommand."""
    group = parser.add_argument_group("output")
    group.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing on stdout (exit status only)"
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log at info on stderr (-vv: debug)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON object on stdout instead of text",
    )


def log_level(args: argparse.Namespace) -> str:
    """The log level the flags ask for: ``-v`` info, ``-vv`` debug, ``-q`` error, else
    ``--log-level`` (warning by default)."""
    verbose = getattr(args, "verbose", 0) or 0
    if verbose:
        return "info" if verbose == 1 else "debug"
    if getattr(args, "quiet", False):
        return "error"
    return str(getattr(args, "log_level", "warning"))


class Output:
    """Where a subcommand's words go: text for people (:meth:`say`, :meth:`show`), a JSON
    summary for scripts (:meth:`summary`), or nothing (quiet)."""

    def __init__(self, *, quiet: bool = False, json: bool = False) -> None:
        self.quiet = quiet
        self.json = json
        self.console = Console(highlight=False, soft_wrap=True)

    @classmethod
    def of(cls, args: argparse.Namespace) -> Output:
        return cls(
            quiet=bool(getattr(args, "quiet", False)), json=bool(getattr(args, "json", False))
        )

    @property
    def text(self) -> bool:
        """True when the text output is wanted (neither quiet nor JSON)."""
        return not (self.quiet or self.json)

    def say(self, message: str, *, markup: bool = True) -> None:
        """A line of text (rich markup unless ``markup=False``)."""
        if self.text:
            self.console.print(message, markup=markup)

    def show(self, table: Table, *, whole: bool = False) -> None:
        """A table. ``whole``: at its natural width even where the terminal is narrower
        (the terminal wraps the lines), so no cell or column name is cut to ``…``."""
        if not self.text:
            return
        if whole:
            unbounded = self.console.options.update_width(1 << 16)
            natural = self.console.measure(table, options=unbounded).maximum
            if natural > self.console.width:
                table.width = natural
        self.console.print(table)

    def summary(self, data: Mapping[str, Any]) -> None:
        """The JSON summary (with ``--json``): one object, one line, NaN and inf as null."""
        if self.json:
            sys.stdout.write(msgspec.json.encode(json_safe(data)).decode() + "\n")
            sys.stdout.flush()


class DeprecatedAlias(argparse.Action):
    """An old spelling of a flag: stores into the new flag's ``dest`` and says on stderr
    that the old name is deprecated. Add it with ``help=argparse.SUPPRESS``."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str, **kwargs: Any):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"ml4t: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def positive_int(text: str) -> int:
    """An argparse type: an integer > 0 (argparse prints the one-line usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def time_flag(flag: str, value: str | None) -> int | None:
    """A time given on the command line (``--start``) as UTC nanoseconds; ConfigError
    (one line, naming the flag) for a time that is not ISO 8601 or has no timezone:
    ml4t never guesses one."""
    if value is None:
        return None
    example = "2024-03-01T14:30:00Z or 2024-03-01T09:30:00-05:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag} {value!r} is not an ISO 8601 time; e.g. {example}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError(f"{flag} {value!r} has no timezone; give one, e.g. {example}")
    return to_ns(moment)
