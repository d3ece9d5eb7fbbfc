"""Shared by every test: nothing here may need a service; see tests/integration/."""
