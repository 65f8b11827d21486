"""Benchmarks for hvmanager: they print figures and never assert timings (see ``bench/README.md``)."""
