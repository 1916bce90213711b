"""Not a library: this file makes ``notebooks/conftest.py`` the module ``notebooks.conftest``.

Without it, pytest imports ``tests/conftest.py``, ``tutorials/conftest.py`` and this folder's
``conftest.py`` as the same top-level module ``conftest``, and ``--doctest-modules`` (which
collects conftest files too) fails with "import file mismatch".
"""
