"""Running the async core from synchronous code, wherever that code is.

`afctl.Context`'s methods are synchronous; the engine underneath is async. `asyncio.run` fails
where an event loop already runs in the thread (a Jupyter notebook, an async test, a server):
there, the work runs on a fresh event loop in a worker thread while the caller's thread waits,
as a synchronous client inside async code would. Each call has a loop of its own, as
`asyncio.run` gives it (and Ctrl-C cancels the work, as there).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(work: Coroutine[Any, Any, T]) -> T:
    """The result of `work`, run to completion on an event loop of its own.

    Raises:
        whatever `work` raises.
    """
    if not loop_running():
        return asyncio.run(work)
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()  # the caller's context variables go along

    def worker() -> None:
        try:
            outcome["value"] = context.run(asyncio.run, work)
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=worker, name="afctl-sync", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


def loop_running() -> bool:
    """Whether an event loop runs in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
