"""The example notebooks run top to bottom in a real Jupyter kernel (nbclient and
ipykernel, on this interpreter), are committed without outputs, and a kernel interrupt
cancels a running backtest as Ctrl-C does in a script."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
KERNEL = "ml4t-test"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A kernel spec for this interpreter, in a Jupyter path of the test's own (so that no
    ``python3`` kernel installed elsewhere on the machine is picked up)."""
    home = tmp_path_factory.mktemp("jupyter")
    spec = home / "data" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "ml4t tests", "language": "python"})
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTER_PATH", str(home / "data"))
        env.setenv("JUPYTER_DATA_DIR", str(home / "data"))
        env.setenv("JUPYTER_RUNTIME_DIR", str(home / "runtime"))
        env.setenv("JUPYTER_CONFIG_DIR", str(home / "config"))
        env.setenv("IPYTHONDIR", str(home / "ipython"))
        env.setenv("JUPYTER_PLATFORM_DIRS", "1")
        yield KERNEL


def test_the_example_notebooks_exist() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert names >= {
        "single_asset_ml",
        "multi_asset_top25",
        "regime_switching",
        "analysis",
        "from_your_data",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code"
    dirty = [i for i, cell in enumerate(code) if cell.outputs or cell.execution_count is not None]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; strip them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_runs_in_a_real_kernel(path: Path, kernel_name: str, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=240,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    client.execute()  # raises CellExecutionError, naming the cell, if one fails
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
    assert any(
        output.output_type in ("execute_result", "display_data")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    ), "the notebook shows nothing"
    assert (tmp_path / "notebook-output").is_dir()  # it wrote where a user would look


SLOW_RUN = textwrap.dedent(
    """
    import time
    from ml4t.backtest import BacktestEngine, BatchStrategy, load_config
    from ml4t.backtest.data.synthetic import SyntheticConfig, make_frames

    class Slow(BatchStrategy):
        def on_timestamp(self, timestamp, batch, context):
            time.sleep(0.002)

    asset = make_frames(SyntheticConfig(n_symbols=2, n_days=10, seed=1)).asset
    config = load_config({"reporting": {"output_dir": OUT}})
    engine = BacktestEngine(config, strategy=Slow("slow"), asset=asset)
    engine.run()
    """
)


def test_a_kernel_interrupt_cancels_a_run_and_flushes_its_results(
    kernel_name: str, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    manager, client = start_new_kernel(kernel_name=kernel_name, cwd=str(tmp_path))
    try:
        where: list[str] = []
        client.execute_interactive(
            "import sys, ml4t.backtest as m; print(sys.executable); print(m.__file__)",
            timeout=60,
            output_hook=_printed(where),
        )
        assert where[0] == sys.executable  # the kernel is this interpreter...
        assert Path(where[1]).is_relative_to(ROOT)  # ...with this tree's package
        msg_id = client.execute(f"OUT = {str(out)!r}\n" + SLOW_RUN)
        manifest = out / "manifest.json"
        deadline = time.monotonic() + 120
        while not (manifest.exists() and json.loads(manifest.read_text())["status"] == "running"):
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        time.sleep(0.5)
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = client.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        lines: list[str] = []
        outcome = client.execute_interactive(
            "print(engine.runtime.outcome.value)", timeout=60, output_hook=_printed(lines)
        )
        assert outcome["content"]["status"] == "ok" and lines == ["cancelled"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    saved = json.loads(manifest.read_text())
    assert saved["status"] == "incomplete" and not saved["complete"]
    assert "cancelled" in saved["incomplete_reason"]
    assert 0 < saved["market_batches"] < 390 * 10
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def _printed(lines: list[str]) -> Callable[[dict[str, Any]], None]:
    """An output hook that collects the words a cell prints."""

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            lines.extend(msg["content"]["text"].split())

    return hook
