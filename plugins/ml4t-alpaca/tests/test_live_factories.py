"""The factories ``ml4t live`` calls for ``adapter: alpaca``: params checked as
``AlpacaConfig`` with the config path in the error, the universe required, the session's
credentials mapped onto the adapters' own, ``paper`` passed through."""

from __future__ import annotations

import polars as pl
import pytest
from alpaca_fakes import FIRST, KEY_ID, SECRET
from ml4t_alpaca import AlpacaExecution, AlpacaMarketData
from ml4t_alpaca.live import execution, market_data

from ml4t.backtest import ConfigError, load_config
from ml4t.backtest.live.credentials import Credentials


def test_the_market_data_factory_builds_the_client_from_params_symbols_and_the_data_section(
    tmp_path,
):
    vix = tmp_path / "vix.parquet"
    pl.DataFrame({"timestamp": [FIRST], "vix": [18.0]}).write_parquet(vix)
    data = load_config({"data": {"context": {"path": str(vix), "fields": ["vix"]}}}).data
    client = market_data(
        symbols=["AAA", "BBB"],
        data=data,
        credentials=Credentials({"key_id": KEY_ID, "secret_key": SECRET}),
        feed="sip",
        grace=1.5,
    )
    assert isinstance(client, AlpacaMarketData)
    assert client.symbols == ("AAA", "BBB")
    assert client.config.feed == "sip" and client.config.grace == 1.5
    assert client.joiner.context_fields == ("vix",)
    assert client._credentials is not None and client._credentials.key_id == KEY_ID


def test_the_execution_factory_takes_paper_and_the_session_from_params():
    client = execution(paper=False, session="run-7")
    assert isinstance(client, AlpacaExecution)
    assert client.config.rest_url == "https://api.alpaca.markets"  # live: paper is false
    assert client.ids.namespace == "ml4t:run-7:"
    assert execution(paper=True).config.rest_url == "https://paper-api.alpaca.markets"


def test_a_bad_param_names_its_place_in_the_config():
    with pytest.raises(ConfigError, match=r"\$\.live\.broker\.params: .*unknown field `fed`"):
        execution(fed="iex")
    with pytest.raises(ConfigError, match=r"\$\.live\.data\.params: Expected `str`"):
        market_data(symbols=["AAA"], feed=3)


def test_the_market_data_needs_the_universe():
    with pytest.raises(ConfigError, match=r"\$\.live\.symbols: .*list the symbols"):
        market_data(feed="iex")


def test_credentials_under_other_names_are_refused_naming_the_ones_needed():
    wrong = Credentials({"api_key": KEY_ID, "secret_key": SECRET})
    with pytest.raises(ConfigError, match="has no key_id") as raised:
        execution(credentials=wrong)
    assert KEY_ID not in str(raised.value) and SECRET not in str(raised.value)
