"""Benchmarks: `python bench/generation.py`, `python bench/bot.py` (see docs/PERFORMANCE.md)."""
