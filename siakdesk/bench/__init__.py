"""Benchmarks that print figures (never asserted in tests): see docs/performance.md."""
