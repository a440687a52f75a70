"""Replaying recorded runs and comparing runs."""
