"""An experiment run as a command (`python -m experiments.NAME`): a stopped run or bad input ends with one line and
an exit status, not a traceback."""

from __future__ import annotations

import sys
from typing import Callable

from jaxphysvae.errors import JaxPhysVAEError
from jaxphysvae.interrupt import RESUME_HINT

# an experiment has no --resume: it continues whatever its output directory holds
EXPERIMENT_RESUME_HINT = "run the same command again to continue"


def run_command(main: Callable[[], object], name: str | None = None) -> None:
    """Call `main()` and exit with 0 when it returns; with 2 and `NAME: error: ...` when it raises a JaxPhysVAEError
    (bad input, a missing or corrupt file); with 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM) and the
    stop's message when a run was interrupted (jaxphysvae.interrupt.Interrupted says where its state was saved; its
    hint to continue becomes EXPERIMENT_RESUME_HINT). `name` (default: the running script's) prefixes the line."""
    name = name or f"experiments.{sys.argv[0].rsplit('/', 1)[-1].removesuffix('.py')}"
    try:
        main()
    except JaxPhysVAEError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:
        message = (str(e) or "interrupted").replace(RESUME_HINT, EXPERIMENT_RESUME_HINT)
        print(f"{name}: {message}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 130))
    sys.exit(0)
