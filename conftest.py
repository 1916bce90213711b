"""Test settings for the whole suite: tests, doctests and notebooks.

One conftest at the root: several ``conftest.py`` outside packages would all import as the
module ``conftest`` and ``--doctest-modules`` would fail with "import file mismatch".
"""

import os

import pytest
from hypothesis import settings

# CI must not fail on a new random example each run: the default profile replays the same
# examples. `HYPOTHESIS_PROFILE=explore pytest` searches new ones when changing the code.
settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """Under pytest, the notebooks run in smoke mode.

    Every notebook starts with ``SMOKE = "CI" in os.environ``. CI services set ``CI``, but a
    plain ``python -m pytest`` on a laptop does not, so this sets it while nbval sets up a
    notebook's cell (when it starts the kernel, which inherits the environment) and restores
    it afterwards: the rest of the session (pytest itself, hypothesis and subprocesses read
    ``CI`` too) runs as it would without the notebooks.
    """
    added = item.path.suffix == ".ipynb" and "CI" not in os.environ
    if added:
        os.environ["CI"] = "1"
    try:
        return (yield)
    finally:
        if added:
            del os.environ["CI"]
