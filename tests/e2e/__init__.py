"""End-to-end tests.

A package on purpose: without __init__.py, pytest (prepend import mode) imports this
directory's conftest.py as the top-level module `conftest`, replacing tests/conftest.py in
sys.modules, and `from conftest import service_missing` in tests/*.py then breaks.
"""
