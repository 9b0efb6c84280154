"""Process-wide progress events (frames done out of total) for the CLI's progress bar.

Tasks call :func:`advance`; a listener (the CLI) registered with :func:`listen` receives
``(done, total)``. With no listener the calls cost almost nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_lock = threading.Lock()
_listeners: list[Callable[[int, int], None]] = []
_state = {"done": 0, "total": 0}


def listen(fn: Callable[[int, int], None]) -> Callable[[], None]:
    """Register ``fn(done, total)``; returns a function that unregisters it."""
    with _lock:
        _listeners.append(fn)

    def remove() -> None:
        with _lock:
            if fn in _listeners:
                _listeners.remove(fn)

    return remove


def start(total: int) -> None:
    """Begin a run of ``total`` frames."""
    with _lock:
        _state.update(done=0, total=total)
        listeners = list(_listeners)
    for fn in listeners:
        fn(0, total)


def advance(frames: int) -> None:
    """Report ``frames`` more frames done."""
    with _lock:
        _state["done"] += frames
        done, total = _state["done"], _state["total"]
        listeners = list(_listeners)
    for fn in listeners:
        fn(done, total)
