"""Clean stops on Ctrl-C (SIGINT) and SIGTERM (what `timeout`, `docker stop` and schedulers send).

A training loop runs inside `stop_requests()`: a signal then only records itself, and the loop checks the request
between compiled calls, saves its state and raises `Interrupted`. No exception is ever raised inside JAX (where it
could land in a garbage-collection callback and be swallowed, or crash the process). A second signal aborts at once
(exit status 128 + signal number); what was saved before stays valid, because every file is written atomically.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# how a stopped run's message says to continue it; a front end that continues differently rewrites it
RESUME_HINT = "continue with --resume"


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal after saving its state; `signum` is the signal, `exit_code` 128 + signum."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequest:
    """Whether a stop was asked for, and by which signal (None while running)."""

    def __init__(self):
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        """The signal's name ("SIGINT", "SIGTERM"), or "" while running."""
        return "" if self.signum is None else signal.Signals(self.signum).name

    def raise_if_set(self, message: str = "") -> None:
        if self.signum is not None:
            raise Interrupted(self.signum, message)


@contextlib.contextmanager
def stop_requests(what: str = "the run") -> Iterator[StopRequest]:
    """Within the block, SIGINT and SIGTERM set the yielded StopRequest instead of raising; a second signal exits
    at once. Outside the main thread (where signals cannot be handled) the request is never set."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum, frame):
        if request.signum is not None:
            print(f"\njaxphysvae: second {signal.Signals(signum).name}: aborting now (the last saved checkpoint "
                  f"stays valid)", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        request.signum = signum
        print(f"\njaxphysvae: {signal.Signals(signum).name} received: saving {what} after the current step "
              f"(send it again to abort at once)", file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, handle) for s in SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
