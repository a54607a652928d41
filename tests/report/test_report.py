"""The HTML report renders offline in headless Chromium with every plot drawn.

Chromium comes from Debian (``scripts/system-deps.sh`` installs it). If it is missing the
test tries that script once, and fails, never skips, when it is still missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml4t.backtest.record import Recorder, ReportingConfig
from ml4t.backtest.report import write_report
from ml4t.backtest.testing import Script, run_components
from tests.record._world import random_world

ROOT = Path(__file__).resolve().parents[2]
WINDOW = (1400, 2400)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        script = ROOT / "scripts" / "system-deps.sh"
        subprocess.run(["bash", str(script)], check=False, timeout=900)
        found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "headless Chromium is needed to test the report: install Debian's chromium "
            "(run scripts/system-deps.sh as root)"
        )
    return found


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("results")
    tape = random_world(days=300, symbols=5, seed=11)
    recorder = Recorder(
        ReportingConfig(output_dir=str(out), html_report=True), initial_equity=100_000.0
    )
    run_components(Script(tape.steps), recorder, strict=False)
    yield out


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def test_the_report_is_one_self_contained_file(results: Path) -> None:
    page = (results / "report.html").read_text()
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert not re.search(r"(src|href)\s*=", page) and "url(" not in page
    # the only URL is the SVG namespace, which is a name, never fetched
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}


def test_the_dom_chromium_builds_has_every_plot(
    chromium: str, results: Path, tmp_path: Path
) -> None:
    dom = _chromium(
        chromium, tmp_path / "profile", "--dump-dom", (results / "report.html").as_uri()
    ).stdout
    for ident in (
        "equity-chart",
        "drawdown-chart",
        "monthly-heatmap",
        "pnl-histogram",
        "mfe-mae-scatter",
        "exposure-chart",
        "metrics-table",
    ):
        assert f'id="{ident}"' in dom, ident

    def section(ident: str) -> str:
        start = dom.index(f'id="{ident}"')
        return dom[start : dom.index("</svg>", start)]

    equity_points = re.search(r'points="([^"]+)"', section("equity-chart"))
    assert equity_points is not None and len(equity_points.group(1).split()) == 300
    assert "<polygon" in section("drawdown-chart")
    assert section("monthly-heatmap").count('class="cell"') >= 14 + 2  # months + years
    assert section("pnl-histogram").count('class="bar"') >= 5
    trades = int(re.search(r"· ([\d,]+) trades", dom).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert trades > 50 and section("mfe-mae-scatter").count('class="point"') == trades
    assert section("exposure-chart").count('class="series"') == 2
    assert "Sharpe ratio" in dom and "n/a" not in dom.split('id="metrics-table"')[1][:3000]


def _share(pixels: np.ndarray, color: str, tolerance: int = 12) -> float:
    target = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    close = np.all(np.abs(pixels[..., :3].astype(int) - target) <= tolerance, axis=-1)
    return float(close.mean())


def test_a_screenshot_shows_the_plots_rendered(
    chromium: str, results: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "report.png"
    _chromium(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        (results / "report.html").as_uri(),
    )
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape[:2] == (WINDOW[1], WINDOW[0])
    # the page is not blank, and its ink is spread down the page: one band per plot
    ink = np.any(image < 200, axis=-1)
    bands = ink.reshape(24, -1, WINDOW[0]).mean(axis=(1, 2))
    assert (bands[:18] > 0.002).sum() >= 17, bands.round(4)
    # each chart's own colours are on screen: the equity and leverage lines (blue), the
    # drawdown area and losing bars (red), winning bars and positive months (green)
    assert _share(image, "#2b6cb0") > 0.0005
    assert _share(image, "#d73027") > 0.002
    assert _share(image, "#1a9850") > 0.002
    # the heatmap and the scatter have many distinct colours (shaded cells, points)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 2000


def test_write_report_rebuilds_the_report_from_the_files_alone(
    results: Path, tmp_path: Path
) -> None:
    target = write_report(results, path=tmp_path / "again.html")
    page = target.read_text()
    assert 'id="equity-chart"' in page and "Incomplete run" not in page
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "missing")
