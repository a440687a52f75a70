"""Registers the `shout` provider: it answers with the input in capitals."""

from afctl.plugins import hookimpl
from afctl.providers.types import Message, ModelResponse, Usage


class Shout:
    def __init__(self, config, environment):
        self.loudness = config.model

    async def complete(self, request, on_text=None):
        text = [m.content for m in request.messages if m.role == "user"][-1].upper()
        return ModelResponse(Message("assistant", f"{text} ({self.loudness})"), Usage(1, 1), "stop")

    async def aclose(self):
        return None


@hookimpl
def register_providers():
    return {"shout": Shout}
