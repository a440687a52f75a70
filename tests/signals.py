"""Starting an afctl process for a test the way a shell starts one."""

from __future__ import annotations

import signal


def as_from_a_shell() -> None:
    """`preexec_fn` for a process a test will signal: SIGINT and SIGTERM at their defaults and
    unblocked, as a shell starts a program, whatever the test process inherited or blocked
    (a library in the test process may block or ignore them for a while)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
