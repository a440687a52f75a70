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


def shouted(assertion, outcome):
    """Passes when the answer (before the loudness in brackets) is all capitals and at least
    `min_length` long."""
    answer = outcome.output.split(" (")[0]
    long_enough = len(answer) >= int(assertion.get("min_length", 0))
    return answer.isupper() and long_enough, f"not shouted: {outcome.output!r}"


@hookimpl
def register_assertions():
    return {"shouted": shouted}
