"""Registers the test harness's fixture plugins for every test module (tests/conftest.py holds the app fixtures)."""

from __future__ import annotations

pytest_plugins = ["tests.servers"]
