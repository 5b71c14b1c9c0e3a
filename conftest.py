"""Root conftest: doctests import lautum without extra setup; see tests/conftest.py for fixtures."""

collect_ignore = ["_build", ".venv"]
