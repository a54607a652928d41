"""The sweep summary's heatmap cells: colour and label from each cell's mean metric."""

from __future__ import annotations

import math

import polars as pl

from ml4t.backtest.sweep.summary import heatmap_svg


def test_heatmap_cell_without_a_finite_value_is_grey_and_labelled_na() -> None:
    table = pl.DataFrame(
        {
            "a.x": [1, 1, 2, 2],
            "a.y": [10, 20, 10, 20],
            "status": ["ok", "ok", "ok", "failed"],
            "sharpe": [1.0, math.nan, 3.0, None],
        }
    )
    svg = heatmap_svg(table, "sharpe")
    assert svg is not None
    # finite cells span the colour scale: 1.0 is the worst (red), 3.0 the best (green)
    assert 'fill="#d73027"><title>a.x=1, a.y=10: 1</title>' in svg
    assert 'fill="#1a9850"><title>a.x=2, a.y=10: 3</title>' in svg
    # a NaN mean and a cell whose only run failed have no value to show
    assert 'fill="#dddddd"><title>a.x=1, a.y=20: n/a</title>' in svg
    assert 'fill="#dddddd"><title>a.x=2, a.y=20: n/a</title>' in svg
