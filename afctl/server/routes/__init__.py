"""The API's routes, declared on `afctl.server.api.API` as their modules are imported."""

from afctl.server.routes import (
    admin,
    blueprints,
    evals,
    health,
    insight,
    openai_compat,
    resources,
    runs,
)

__all__ = ["admin", "blueprints", "evals", "health", "insight", "openai_compat", "resources",
           "runs"]  # fmt: skip
