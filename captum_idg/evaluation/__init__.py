"""Benchmark harness: real models and photos, datasets, the attribution pipeline
(:func:`~captum_idg.evaluation.pipeline.run`), its rows, the attribution store,
tables and plots."""

from captum_idg.evaluation.store import read_attribution

__all__ = ["read_attribution"]
