"""The exception hierarchy: one root, a few branches.

Expected market outcomes (a rejected order, an expired order) are events, not exceptions.
Exceptions are for things that stop a run: bad configuration, bad data, a misused bus, a
component that failed.
"""

from __future__ import annotations

__all__ = [
    "BusError",
    "ComponentError",
    "ConfigError",
    "DataValidationError",
    "ML4TError",
    "OrderError",
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
