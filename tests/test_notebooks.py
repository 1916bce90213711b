"""Notebooks are committed clean, and ready for the smoke run under pytest.

pytest runs every notebook under ``tutorials/`` and ``notebooks/`` with nbval (see
``pyproject.toml``); these tests check what nbval does not: no outputs or execution counts in
git (clear them with ``jupyter nbconvert --clear-output --inplace NOTEBOOK``), and a first code
cell that sets the smoke switch from the ``CI`` variable, which the root ``conftest.py`` sets
for notebook kernels.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(path for folder in ("tutorials", "notebooks")
                   for path in (ROOT / folder).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in path.parts)
SMOKE_SWITCH = re.compile(r"""(?:^|;)\s*SMOKE\s*=[^\n]*["']CI["']""", re.MULTILINE)


def test_there_are_tutorials():
    assert any(path.parent.name == "tutorials" for path in NOTEBOOKS)


@pytest.fixture(params=NOTEBOOKS, ids=lambda path: str(path.relative_to(ROOT)))
def notebook(request):
    nb = nbformat.read(request.param, as_version=4)
    nbformat.validate(nb)
    return nb


def test_committed_without_outputs(notebook):
    dirty = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
             and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, (f"code cells {dirty} hold outputs or execution counts: run "
                       f"`jupyter nbconvert --clear-output --inplace` on the notebook")
    assert "widgets" not in notebook.metadata, "saved widget state is output too: clear it"


def test_first_code_cell_sets_smoke_switch(notebook):
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert SMOKE_SWITCH.search(first.source), (
        f"the first code cell must set the smoke switch, e.g. `SMOKE = \"CI\" in os.environ`; "
        f"it is:\n{first.source}")
