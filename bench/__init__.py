"""Benchmarks against the anchors (workerd, a process per execution); `python -m bench`."""
