"""The API's routes, declared on `afctl.server.api.API` as their modules are imported."""

from afctl.server.routes import admin, health, openai_compat, resources, runs

__all__ = ["admin", "health", "openai_compat", "resources", "runs"]
