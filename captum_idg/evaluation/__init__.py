"""Benchmark harness: real models and photos, methods, runs, tables and plots."""
