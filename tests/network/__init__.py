"""Tests: virtual switches on the real host network."""
