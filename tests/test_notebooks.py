"""The notebooks in notebooks/ run from top to bottom on the trained default model, are stored
without outputs, and define nothing of their own (helpers belong in `classifier`)."""
import ast
import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Seconds one cell may take. Both notebooks take well under a minute on an idle 2-core
#: machine; the margin is for a loaded CI runner.
CELL_TIMEOUT = 300
#: A kernelspec written for this test, so the kernel is this interpreter (this venv) even when
#: the user has a `python3` kernelspec of their own pointing at another Python.
KERNEL = "postsieve-tests"


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"explore_corpus.ipynb", "evaluate_thresholds.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_defines_no_functions_or_classes(path):
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    tree = ast.parse(source)
    defined = [node.name for node in ast.walk(tree)
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert not defined, f"{path.name} defines {defined}: move reusable code into classifier/ with a test"
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "classifier" in imported


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory):
    """A kernelspec directory whose one kernel runs ipykernel in this interpreter."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(kernels / KERNEL)  # argv[0] is sys.executable
    return KernelSpecManager(kernel_dirs=[str(kernels)])


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, kernel_specs, default_models_dir, tmp_path):
    from jupyter_client import AsyncKernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # last cell: report the kernel's interpreter, to prove the notebook ran in this venv
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    env = {**os.environ,
           "POSTSIEVE_NOTEBOOK_MODEL_DIR": str(default_models_dir),
           "POSTSIEVE_NOTEBOOK_CORPUS": str(ROOT / "training_data"),
           # draw every figure into the output (as Jupyter does), so plotting code really runs
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    km = AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs)
    client = NotebookClient(nb, km=km, kernel_name=KERNEL, timeout=CELL_TIMEOUT,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute(cleanup_kc=True, env=env)  # a failing cell raises CellExecutionError
    finally:
        nbformat.write(nb, tmp_path / path.name)  # the executed copy, for a look after a failure
    assert nb.cells[-1].outputs[0]["text"].strip() == sys.prefix
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was drawn"
