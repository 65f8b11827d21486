"""Tests: vm."""
