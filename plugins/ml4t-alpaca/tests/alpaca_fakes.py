"""The scripted session's fixed facts: fake credentials, the universe, the first bar's time.

A module of its own, not conftest: the suite collects several plugins' tests, and a
``from conftest import`` would find whichever conftest was imported first.
"""

from datetime import UTC, datetime

KEY_ID = "PKTESTKEYID7QX4ZLM2V"  # recognisable fakes: the credentials test greps for them
SECRET = "tEsTsEcReT9x8w7v6u5t4s3r2q1p0oNMLKJIHGFE"
SYMBOLS = ("AAA", "BBB", "CCC")
FIRST = datetime(2024, 3, 4, 14, 31, tzinfo=UTC)  # known at 14:31 = Alpaca's 14:30 bar
