"""Blueprints: reusable, parameterised bundles of manifests, tools, knowledge and evals —
loaded and linted, rendered from parameters, packed into reproducible archives and
extracted from them with every member checked first."""
