"""Scale-out: parameter sweeps and walk-forward runs, on a process pool or on Ray.

```python
from ml4t.backtest.sweep import run_sweep

table = run_sweep("run.yaml", "GRID.yaml", out_dir="sweeps/first", executor="local")
```

Each backtest is one task that reads its data from the shared path and imports its
strategy by the config's path; results land in ``out_dir/runs/<run_id>/`` and one
``results.parquet`` table (see ``docs/scale-out.md``).
"""

from __future__ import annotations

from ml4t.backtest.sweep.cli import add_cli
from ml4t.backtest.sweep.executors import Executor, LocalExecutor, RayExecutor, make_executor
from ml4t.backtest.sweep.grid import ParamValues, SweepSpec, expand_points, load_spec
from ml4t.backtest.sweep.plan import Task, plan_tasks
from ml4t.backtest.sweep.runner import run_sweep
from ml4t.backtest.sweep.summary import best_runs, heatmap_svg
from ml4t.backtest.sweep.task import run_task
from ml4t.backtest.sweep.walkforward import WalkForward, Window, select_out_of_sample, windows

__all__ = [
    "Executor",
    "LocalExecutor",
    "ParamValues",
    "RayExecutor",
    "SweepSpec",
    "Task",
    "WalkForward",
    "Window",
    "add_cli",
    "best_runs",
    "expand_points",
    "heatmap_svg",
    "load_spec",
    "make_executor",
    "plan_tasks",
    "run_sweep",
    "run_task",
    "select_out_of_sample",
    "windows",
]
