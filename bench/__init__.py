"""The benchmark (`make bench`, or `python -m bench.bench` from the repository root)."""
