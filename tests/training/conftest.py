"""Fixtures shared by the training tests."""
