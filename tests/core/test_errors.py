"""The exception hierarchy at its call sites: each branch that replaced a builtin is raised
where the builtin was, says what was wrong, and still is the builtin its callers caught."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from ml4t.backtest import (
    ClockError,
    Codec,
    ConfigError,
    ML4TError,
    ProtocolError,
    ResultsNotFoundError,
    Runtime,
    SimulatedClock,
    TimeFormatError,
    UnknownNameError,
    WallClock,
    configure_logging,
    parse_duration,
    to_ns,
    write_report,
)
from ml4t.backtest._bar import Bar
from ml4t.backtest._universe import Universe
from ml4t.backtest.cli import main
from ml4t.backtest.live import BrokerAdapter, DrivenClock, FeedAdapter, ReplayClock
from ml4t.backtest.record import RecorderResults
from ml4t.backtest.sweep.grid import load_spec


def test_every_new_branch_is_an_ml4t_error_and_the_builtin_it_replaced() -> None:
    assert issubclass(ClockError, ML4TError) and issubclass(ClockError, ValueError)
    assert issubclass(TimeFormatError, ValueError) and issubclass(TimeFormatError, TypeError)
    assert issubclass(ProtocolError, ML4TError) and issubclass(ProtocolError, TypeError)
    assert issubclass(UnknownNameError, KeyError) and issubclass(UnknownNameError, AttributeError)
    assert issubclass(ResultsNotFoundError, FileNotFoundError)
    for cls in (TimeFormatError, UnknownNameError, ResultsNotFoundError):
        assert issubclass(cls, ML4TError)


@pytest.mark.parametrize(
    ("call", "builtin", "message"),
    [
        (lambda: to_ns(True), TypeError, "a bool is not a timestamp"),
        (lambda: to_ns(1.5), TypeError, "cannot convert float to a timestamp"),
        (lambda: to_ns("yesterday"), ValueError, "cannot parse timestamp 'yesterday'"),
        (lambda: to_ns(datetime(2024, 1, 2)), ValueError, "naive datetime 2024-01-02T00:00:00"),
        (lambda: parse_duration(True), TypeError, "a bool is not a duration"),
        (lambda: parse_duration(1.5), TypeError, "cannot convert float to a duration"),
        (lambda: parse_duration(" "), ValueError, "empty duration"),
        (lambda: parse_duration("5 parsecs"), ValueError, "cannot parse duration '5 parsecs'"),
    ],
)
def test_a_value_that_is_no_time_is_a_time_format_error(call, builtin, message) -> None:
    with pytest.raises(TimeFormatError, match=message) as caught:
        call()
    assert isinstance(caught.value, builtin)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: SimulatedClock(100).advance_to(99), "simulated time cannot go back"),
        (lambda: SimulatedClock(100).schedule(99, lambda: None), "before the simulated time"),
        (lambda: SimulatedClock().set_timer(lambda ns: None), "a timer needs interval_ns"),
        (lambda: SimulatedClock().set_timer(lambda ns: None, interval_ns=0), "got 0 ns"),
        (lambda: WallClock(speed=0), "speed must be positive, got 0"),
        (lambda: ReplayClock(speed=-1, origin_ns=0), "speed must be positive"),
        (lambda: DrivenClock(100).advance_to(99), "driven time cannot go back"),
    ],
)
def test_misusing_a_clock_is_a_clock_error(call, message) -> None:
    with pytest.raises(ClockError, match=message) as caught:
        call()
    assert isinstance(caught.value, ValueError)


def test_a_field_a_bar_does_not_have_is_an_unknown_name_by_item_and_by_attribute() -> None:
    bar = Bar()
    bar.context = {"vix": 15.0}
    assert bar["vix"] == 15.0 and bar.vix == 15.0
    with pytest.raises(UnknownNameError) as by_item:
        bar["vxi"]
    assert isinstance(by_item.value, KeyError)
    assert str(by_item.value) == "bar has no column or context field 'vxi'"  # unquoted
    with pytest.raises(AttributeError, match=r"'vxi'; columns: \[\], context: \['vix'\]"):
        bar.vxi  # noqa: B018
    assert bar.get("vxi", 0.0) == 0.0 and getattr(bar, "vxi", None) is None
    assert not hasattr(bar, "vxi") and not hasattr(bar, "__deepcopy__")


def test_a_results_table_that_does_not_exist_is_an_unknown_name() -> None:
    results = RecorderResults(output_dir=None, metrics={}, manifest={})
    with pytest.raises(UnknownNameError, match="no table 'positions'; tables are trades, fills"):
        results.table("positions")
    assert results.table("fills").is_empty()


def test_a_report_of_a_missing_directory_is_results_not_found_and_the_command_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-run"
    with pytest.raises(ResultsNotFoundError, match="no results directory at") as caught:
        write_report(missing)
    assert isinstance(caught.value, FileNotFoundError)
    # a user error, so the command prints one line and exits 2 instead of a traceback
    assert main(["report", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"ml4t: no results directory at {missing}; give the reporting.output_dir of a run\n"
    )


def test_an_object_without_its_role_protocol_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="does not implement the ExecutionClient protocol"):
        BrokerAdapter(object())  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="does not implement the MarketDataClient protocol"):
        FeedAdapter(object())  # type: ignore[arg-type]
    plain = pl.DataFrame({"symbol": ["AAA"], "close": [1.0]})
    with pytest.raises(ProtocolError, match=r"'symbol' as a pl\.Enum of the universe, got String"):
        Universe.of_frame(plain)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Runtime(dispatch="eager"), "dispatch must be 'sequenced' or 'concurrent'"),  # type: ignore[arg-type]
        (lambda: configure_logging("loud"), "unknown log level 'loud'"),
        (lambda: Codec(types=()), "a codec needs at least one event type"),
        (lambda: Universe(["B", "A", "B"]), r"a symbol twice: \['B'\]; list each once"),
    ],
)
def test_a_bad_argument_value_is_a_config_error(call, message) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        call()
    assert isinstance(caught.value, ValueError)


def test_an_unknown_walk_forward_timezone_is_a_config_error_at_its_key() -> None:
    spec = {
        "params": {"strategy.params.k": [1, 2]},
        "walk_forward": {
            "start": "2024-01-01",
            "end": "2024-06-28",
            "train": 3,
            "test": 1,
            "timezone": "Mars/Olympus",
        },
    }
    with pytest.raises(ConfigError, match=r"unknown timezone 'Mars/Olympus'.*\$\.walk_forward"):
        load_spec(spec)
