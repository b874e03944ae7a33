"""Fixtures shared by the training tests."""

from tests.test_training_jobs import builtin  # noqa: F401  (the built-in model versions)
