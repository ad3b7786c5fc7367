"""Re-execute the notebooks in place, so they are committed with the outputs of a real small
run on the embedded model: `python notebooks/regenerate.py` (a few minutes on 2 CPU cores).

Each notebook runs top to bottom with nbclient, in a fresh temporary folder that holds its
runs and call cache (the repository's results/ is not touched), on the small settings below
(TTCBENCH_NB_* variables its parameters cell reads). Plots use the kernel's own inline
backend, as in Jupyter. What would make every rerun's diff noisy is dropped: execution
timings, the kernel's version details, progress-bar redraws (only a bar's last state is
kept) and the temporary folder's path.
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

# In this order: compare_strategies reads the runs quickstart made in the same folder.
SETTINGS: dict[str, dict[str, str]] = {
    "quickstart": {
        "TTCBENCH_NB_LIMIT": "3",
        "TTCBENCH_NB_BUDGETS": "1,2,4,8",
        "TTCBENCH_NB_MAX_TOKENS": "128",
        "TTCBENCH_NB_FIT_RESAMPLES": "50",
    },
    "compare_strategies": {
        "TTCBENCH_NB_RUNS": "results/arithmetic",
        "TTCBENCH_NB_FIT_RESAMPLES": "50",
    },
    "reproduce_self_consistency": {
        "TTCBENCH_NB_LIMIT": "2",
        "TTCBENCH_NB_BUDGETS": "1,2,4",
        "TTCBENCH_NB_MAX_TOKENS": "160",
    },
}


def execute(name: str, workdir: Path) -> nbformat.NotebookNode:
    """Run one notebook in `workdir` with its settings; return it with clean outputs."""
    path = HERE / f"{name}.ipynb"
    book = nbformat.read(path, as_version=4)
    metadata = copy.deepcopy(book.metadata)  # as committed: the kernel's versions are volatile
    for key in [k for k in os.environ if k.startswith("TTCBENCH_NB_")] + ["MPLBACKEND"]:
        os.environ.pop(key, None)  # a stray setting, or Agg, would change what is shown
    os.environ.update(
        SETTINGS[name],
        TTCBENCH_NB_RESULTS="results",  # relative, so outputs show results/..., not /tmp/...
        TTCBENCH_CACHE=str(workdir / "cache.sqlite"),
        WANDB_MODE="offline",
    )
    client = NotebookClient(
        book,
        timeout=1800,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    book.metadata = metadata
    for cell in book.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = clean(cell.outputs, str(workdir) + "/")
    return book


def clean(outputs: list, workdir: str) -> list:
    """Consecutive writes to one stream become one output that keeps each line's last redraw
    (all Jupyter shows of a progress bar); the temporary folder's path is dropped."""
    kept: list = []
    for output in outputs:
        if output.output_type == "stream":
            last = kept[-1] if kept else None
            if last is not None and last.output_type == "stream" and last.name == output.name:
                last.text += output.text
                continue
        kept.append(output)
    for output in kept:
        if output.output_type == "stream":
            lines = output.text.split("\n")
            output.text = "\n".join(line.rsplit("\r", 1)[-1] for line in lines)
            output.text = output.text.replace(workdir, "")
        for mime, value in output.get("data", {}).items():
            if isinstance(value, str) and mime.startswith("text/"):
                output.data[mime] = value.replace(workdir, "")
    return kept


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ttcbench-notebooks-") as tmp:
        for name in SETTINGS:
            started = time.perf_counter()
            book = execute(name, Path(tmp))
            nbformat.validate(book)
            nbformat.write(book, HERE / f"{name}.ipynb")
            print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
