"""Benchmarks and the event-stream generator; run the modules with `python -m bench.<name>`."""
