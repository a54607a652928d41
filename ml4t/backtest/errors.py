"""The exception hierarchy: one root, a few branches.

Expected market outcomes (a rejected order, an expired order) are events, not exceptions.
Exceptions are for things that stop a run: bad configuration, bad data, a misused bus, a
component that failed.

Every exception ml4t raises is an :class:`ML4TError`, so ``except ML4TError`` catches
them all (``NotImplementedError`` of an abstract method aside). A class that takes the
place of a builtin also inherits it (:class:`ConfigError` is a ``ValueError``,
:class:`UnknownNameError` a ``KeyError`` and an ``AttributeError``), so code written
against the builtin keeps working.
"""

from __future__ import annotations

__all__ = [
    "BusError",
    "ClockError",
    "ComponentError",
    "ConfigError",
    "DataValidationError",
    "ML4TError",
    "OrderError",
    "ProtocolError",
    "ResultsNotFoundError",
    "TimeFormatError",
    "UnknownNameError",
]


class ML4TError(Exception):
    """Root of every error raised by ml4t."""


class ConfigError(ML4TError, ValueError):
    """A configuration is invalid: the message names the key path and what was expected.

    It is also a ``ValueError`` so that msgspec, when a config struct's ``__post_init__``
    raises it, reports it with the path of the offending section.
    """


class DataValidationError(ML4TError):
    """Input data breaks a rule: the message names the file, column, rows and count."""


class OrderError(ML4TError, ValueError):
    """An order helper was called with an argument no order can have (a quantity that is
    not a positive finite number, a price of the wrong type, an unknown time in force).

    Raised at the call, before anything is sent, so the strategy's bookkeeping and the
    run are untouched; it is a ``ValueError`` too. Requests that are well formed but
    refused by the account or the market (buying power, an unknown symbol) are
    ``OrderRejected`` events instead.
    """


class BusError(ML4TError):
    """The bus was misused: wrong event type for a topic, unknown topic, bad subscription."""


class ClockError(ML4TError, ValueError):
    """A clock was misused: an alarm before the simulated time, time moved backwards, a
    timer with no schedule or a non-positive interval, a speed that is not positive.

    Time only moves forward: an alarm in the simulated past would rewrite history.
    """


class TimeFormatError(ML4TError, ValueError, TypeError):
    """A value that is not a time or a duration ml4t can read: an unparsable string, a
    naive datetime (ml4t never guesses a timezone), a bool or another type.

    A ``ValueError``, and a ``TypeError`` for a value of the wrong type, so code that
    caught either from ``to_ns`` or ``parse_duration`` keeps working; msgspec reports it
    with the path of the config key it was decoding.
    """


class ProtocolError(ML4TError, TypeError):
    """An object given to ml4t does not follow the protocol of its role: a live client
    that is not an ``ExecutionClient`` or ``MarketDataClient``, a market frame whose
    ``symbol`` is not a ``pl.Enum`` of the universe. A ``TypeError`` too."""


class UnknownNameError(ML4TError, KeyError, AttributeError):
    """A name that is not there was looked up: a bar's column or context field
    (``bar["x"]``, ``bar.x``), a results table (``results.table("x")``).

    A ``KeyError`` and an ``AttributeError`` too, so ``bar.get(name, default)``,
    ``getattr(bar, name, default)`` and ``hasattr`` work as on any mapping or object.
    The message lists the names there are.
    """

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; a message reads better unquoted
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class ResultsNotFoundError(ML4TError, FileNotFoundError):
    """A path given as a run's results directory is not one (a ``FileNotFoundError``)."""


class ComponentError(ML4TError):
    """A component failed while the graph was running.

    Carries the component's name, the event it was handling (if any) and the clock time,
    so the message says where in the run the failure happened. The original exception is
    the ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        component: str,
        event_type: str | None = None,
        time_ns: int | None = None,
    ) -> None:
        super().__init__(message)
        self.component = component
        self.event_type = event_type
        self.time_ns = time_ns
