"""hvmanager's test suite."""
