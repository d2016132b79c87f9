"""Thread workers for the counter's screens: the one way slow work (the store,
PIN hashing, printing, the network) runs, its result or exception handed back
to the event loop with ``call_from_thread``. Every screen can use it, in the
counter app or not (the review screen does)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from textual.app import App
from textual.dom import DOMNode
from textual.worker import Worker

T = TypeVar("T")


def call_back(app: App[None], cb: Callable[[T], None], value: T) -> None:
    """From a worker thread: run ``cb(value)`` on the event loop."""
    try:
        app.call_from_thread(cb, value)
    except RuntimeError:
        pass  # the app is closing


def run_in_thread(
    node: DOMNode,
    fn: Callable[..., T],
    *args: object,
    on_done: Callable[[T], None],
    on_error: Callable[[BaseException], None],
    group: str,
    exclusive: bool = False,
) -> Worker[None]:
    """Run ``fn(*args)`` in a thread worker owned by ``node``; hand the result
    (or the exception, never swallowed) back to the event loop."""
    app = node.app

    def job() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:
            call_back(app, on_error, storage_problem(app, exc))
            return
        call_back(app, on_done, result)

    return node.run_worker(job, thread=True, group=group, exclusive=exclusive, exit_on_error=False)


def storage_problem(app: object, exc: BaseException) -> BaseException:
    """A full disk, read-only folder or damaged database becomes the one sentence
    of store/failures.py (its traceback logged, never shown); others pass as they are."""
    backend = getattr(app, "backend", None)
    path = (backend.storage_path() if backend is not None else None) or getattr(app, "db_path", None)
    if not isinstance(exc, Exception):
        return exc
    from opd_fallback.tui.values import explain  # the store loads behind the login screen

    return explain(exc, Path(path) if path else None, where="counter") or exc
