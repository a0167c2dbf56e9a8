"""The test suite is a package: its modules are ``tests.<package>.test_<module>`` (no clash with other top-level
names, and two files may share a name in different folders), and ``tests.support`` imports under ``pytest`` as well
as ``python -m pytest``. The layout is described in ``tests/conftest.py``."""
