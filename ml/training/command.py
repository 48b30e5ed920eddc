"""The shared shell of the training/evaluation commands: one exit-code convention for all."""
from __future__ import annotations

import sys
from typing import Callable


def run_command(body: Callable[[], int], interrupted: str) -> int:
    """Run ``body``; Ctrl+C prints ``interrupted`` (how to continue) and gives 130, a bad input
    (missing file, wrong data, no GPU) one ``error:`` line and 2 — never a traceback."""
    try:
        return body()
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
