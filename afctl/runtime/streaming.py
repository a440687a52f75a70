"""What a consumer of a streamed answer sees: one clean answer, however often the model call
behind it is retried.

A retried stream starts over. Each attempt's text is compared with what was already passed
on: while a new attempt repeats it, nothing is passed on again; once it goes further, only
the new text is; if it goes another way (a model that answers differently the second time),
the consumer's `restart()` is called first, so it can clear what it showed (a terminal
erases it, an SSE client is sent a reset), and the new attempt is passed on from its start.
A consumer without `restart` gets the new text after a line break.
"""

from __future__ import annotations

from collections.abc import Callable

OnText = Callable[[str], None]


class CleanStream:
    """The stream of one model call (all its attempts) towards one consumer."""

    def __init__(self, consumer: OnText) -> None:
        self.consumer = consumer
        self.shown = ""
        """What the consumer has been given for this call."""

    def attempt(self) -> OnText:
        """The text callback for one attempt."""
        received: list[str] = []
        state = {"text": "", "diverged": False}

        def feed(piece: str) -> None:
            received.append(piece)
            text = state["text"] = str(state["text"]) + piece
            if not state["diverged"]:
                if self.shown.startswith(text):
                    return  # repeating what was shown already
                if not text.startswith(self.shown):
                    state["diverged"] = True
                    self._restart()
                    self._pass(text)
                    return
                self._pass(text[len(self.shown) :])
                return
            self._pass(piece)

        return feed

    def _pass(self, piece: str) -> None:
        if piece:
            self.shown += piece
            self.consumer(piece)

    def _restart(self) -> None:
        restart = getattr(self.consumer, "restart", None)
        if callable(restart):
            restart()
        elif self.shown:
            self.consumer("\n")
        self.shown = ""
