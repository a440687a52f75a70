"""Running the async core from synchronous code, wherever that code is.

`afctl.Context`'s methods are synchronous; the engine underneath is async. `asyncio.run` fails
where an event loop already runs in the thread (a Jupyter notebook, an async test, a server),
and a fresh loop per call would lose what calls share: `ContextLoop` keeps one loop for a
context's life, in the caller's thread, or in a worker thread where a loop already runs there.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class ContextLoop:
    """One event loop for the life of a synchronous context, so that what its calls share
    (SDK clients, MCP servers) stays usable from one call to the next.

    In a thread where no loop runs, each call runs on an `asyncio.Runner` in that thread
    (Ctrl-C cancels the work and raises KeyboardInterrupt, as with `asyncio.run`). Where a loop
    already runs (a notebook), calls run on a loop of the context's own in a worker thread
    while the caller waits; Ctrl-C there cancels the work too.
    """

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """The result of `work`, run to completion on the context's loop.

        Raises:
            whatever `work` raises.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(work, context=contextvars.copy_context())
        return self._in_worker(work)

    def _in_worker(self, work: Coroutine[Any, Any, T]) -> T:
        import concurrent.futures

        if self._loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=loop.run_forever, name="afctl-loop",
                                            daemon=True)  # fmt: skip
            self._thread.start()
            self._loop = loop
        loop = self._loop
        context = contextvars.copy_context()  # the caller's context variables go along
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        tasks: list[asyncio.Task[T]] = []

        def start() -> None:
            task = loop.create_task(work, context=context)
            tasks.append(task)

            def finished(task: asyncio.Task[T]) -> None:
                if task.cancelled():
                    done.set_exception(asyncio.CancelledError())
                elif task.exception() is not None:
                    done.set_exception(task.exception())
                else:
                    done.set_result(task.result())

            task.add_done_callback(finished)

        loop.call_soon_threadsafe(start)
        try:
            return done.result()
        except KeyboardInterrupt:
            if tasks:
                loop.call_soon_threadsafe(tasks[0].cancel)
            concurrent.futures.wait([done])  # the work records how it was interrupted
            raise

    def close(self, final: Coroutine[Any, Any, Any] | None = None) -> None:
        """Run `final` (closing what the calls shared) on the loop they used, then stop it."""
        try:
            if final is not None:
                if self._loop is not None:
                    asyncio.run_coroutine_threadsafe(final, self._loop).result(timeout=30)
                elif self._runner is not None and not loop_running():
                    self._runner.run(final)
                else:
                    final.close()  # nothing was shared: nothing to close
        finally:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                if self._thread is not None:
                    self._thread.join(timeout=10)
                self._loop.close()
                self._loop = self._thread = None
            if self._runner is not None and not loop_running():
                self._runner.close()
                self._runner = None


def loop_running() -> bool:
    """Whether an event loop runs in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
