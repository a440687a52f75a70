"""Evaluation: suites of cases run against an agent, checked by assertions, gated in CI."""
