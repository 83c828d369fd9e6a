"""Benchmarks and graph builders for wfst-gpu (run from the repository root: ``python -m bench.<name>``)."""
