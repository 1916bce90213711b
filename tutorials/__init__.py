"""Not a library: this file makes ``tutorials/conftest.py`` the module ``tutorials.conftest``.

Without it, pytest imports both ``tests/conftest.py`` and ``tutorials/conftest.py`` as the
top-level module ``conftest``, and ``--doctest-modules`` (which collects conftest files too)
fails with "import file mismatch".
"""
