"""Support code for the hvmanager test suite (test guest builder and helpers)."""
