"""Helpers the tests import (`from support.helmchart import render`): on the path through
pytest's `pythonpath` setting in pyproject.toml."""
