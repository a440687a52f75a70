"""afctl's own providers, registered through the plugin hook like any other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from afctl.errors import RunError
from afctl.plugins import hookimpl
from afctl.providers.models import DEFAULT_KEY_ENV, PRESETS, ModelConfig
from afctl.providers.types import ProviderFactory

if TYPE_CHECKING:
    from afctl.tool_context import ToolContext


def _headers(config: ModelConfig, environment: ToolContext) -> dict[str, str]:
    return {key: environment.secrets.resolve(value) for key, value in config.headers.items()}


def _key(config: ModelConfig, environment: ToolContext, default: str | None = None) -> str:
    variable = config.api_key_env or DEFAULT_KEY_ENV.get(config.provider)
    value = environment.env(variable) if variable else None
    if value:
        return value
    if default is not None:
        return default
    raise RunError(
        f"no API key for {config.label}: {variable} is not set",
        hint=f"export {variable}=..., or set api_key_env on a Model resource",
    )


def _openai_api(config: ModelConfig) -> Any:
    """The adapter class for the model's `api`: Chat Completions or Responses."""
    if config.api == "responses":
        from afctl.providers.openai_responses import OpenAIResponsesProvider

        return OpenAIResponsesProvider
    from afctl.providers.openai_chat import OpenAIChatProvider

    return OpenAIChatProvider


def _openai(config: ModelConfig, environment: ToolContext) -> Any:
    if config.base_url is None and environment.env("OPENAI_BASE_URL"):
        config = _with_base_url(config, str(environment.env("OPENAI_BASE_URL")))
    return _openai_api(config)(
        config, _key(config, environment), _headers(config, environment), compatible=False
    )


def _compatible(config: ModelConfig, environment: ToolContext) -> Any:
    preset = PRESETS.get(config.provider)
    if config.base_url is None:
        if preset is None:
            raise RunError(
                f"{config.ref}: an openai-compatible model needs a base_url",
                hint="define a Model resource with provider: openai-compatible and base_url",
            )
        config = _with_base_url(config, preset.base_url)
    if config.api_key_env:  # named: the server needs it, so a missing one is an error
        key = _key(config, environment)
    else:  # not named: the server needs no key (a local preset's own, or a placeholder)
        preset_env = preset.api_key_env if preset else None
        key = (environment.env(preset_env) if preset_env else None) or (
            preset.default_key if preset else "EMPTY"
        )
    return _openai_api(config)(config, key, _headers(config, environment), compatible=True)


def _anthropic(config: ModelConfig, environment: ToolContext) -> Any:
    from afctl.providers.anthropic_messages import AnthropicProvider

    if config.base_url is None and environment.env("ANTHROPIC_BASE_URL"):
        config = _with_base_url(config, str(environment.env("ANTHROPIC_BASE_URL")))
    return AnthropicProvider(config, _key(config, environment), _headers(config, environment))


def _local(config: ModelConfig, environment: ToolContext) -> Any:
    from afctl.providers.offline import EchoProvider, ScriptedProvider

    if config.model == "echo":
        return EchoProvider()
    if config.model == "scripted":
        return ScriptedProvider(config.script, environment.root)
    if config.model == "hashing":
        from afctl.providers.offline import HashingEmbedder

        return HashingEmbedder()
    raise RunError(
        f"unknown offline model local/{config.model}",
        hint="use local/echo, local/scripted or local/hashing (embeddings)",
    )


def _with_base_url(config: ModelConfig, base_url: str) -> ModelConfig:
    from dataclasses import replace

    return replace(config, base_url=base_url)


@hookimpl
def register_providers() -> dict[str, ProviderFactory]:
    return {
        "openai": _openai,
        "anthropic": _anthropic,
        "openai-compatible": _compatible,
        "ollama": _compatible,
        "vllm": _compatible,
        "lmstudio": _compatible,
        "local": _local,
    }


def make_provider(config: ModelConfig, environment: ToolContext) -> Any:
    """A provider for `config`, from afctl's own or a plugin's factory."""
    from afctl.plugins import providers

    factories = providers()
    factory = factories.get(config.provider)
    if factory is None:
        from afctl.diagnostics import did_you_mean

        raise RunError(
            f"no provider named {config.provider!r}",
            hint=did_you_mean(config.provider, factories) or "providers: " + ", ".join(factories),
        )
    return factory(config, environment)
