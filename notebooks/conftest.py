"""Under pytest, the notebooks run in smoke mode (as the tutorials do, see tutorials/conftest.py).

Every notebook starts with ``SMOKE = "CI" in os.environ`` and shrinks its work when it is true.
CI services set ``CI``, but a plain ``python -m pytest`` on a laptop does not, so this sets it
for the notebooks' kernels: nbval starts one kernel per notebook while setting up its first
cell, and the kernel inherits this process's environment. ``CI`` is set only for that moment
and restored afterwards, so the rest of the test session runs as it would without the notebooks.
"""

import os

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    added = "CI" not in os.environ
    if added:
        os.environ["CI"] = "1"
    try:
        return (yield)
    finally:
        if added:
            del os.environ["CI"]
