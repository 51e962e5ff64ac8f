"""A progress line on stderr for anything that may take more than a second (rich)."""
from __future__ import annotations

import contextlib
import sys
import time


@contextlib.contextmanager
def progress(description: str, enabled: bool = True):
    """Show a spinner with `description` and elapsed seconds while the block runs (TTY only).

    Yields a function `update(text)` that changes the description.
    """
    if not enabled or not sys.stderr.isatty():
        yield lambda text: None
        return
    from rich.console import Console

    console = Console(stderr=True)
    start = time.monotonic()
    state = {"text": description}
    with console.status(description) as status:
        def update(text: str) -> None:
            state["text"] = text
            status.update(f"{text} [dim]({time.monotonic() - start:.0f} s)[/dim]")
        yield update
