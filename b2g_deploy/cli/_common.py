"""What every command shares: one-line errors with exit code 2 (130 after Ctrl-C), progress bars."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from ..errors import B2GError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Our errors become 'error: <message>' on stderr and exit code 2, without a traceback;
    Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except B2GError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:  # outputs are written atomically: nothing half-written stays
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def progress_bar(what: str, total: int | None, *fields: str):
    """A rich progress bar: count, rate, ETA (no ETA when total is None, e.g. a live stream)."""
    from rich.progress import (  # noqa: I001
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn()]
    columns += [TextColumn(f"{name} {{task.fields[{name}]}}") for name in fields]
    columns += [TextColumn("{task.fields[rate]}"), TimeElapsedColumn()]
    if total is not None:
        columns.append(TimeRemainingColumn())
    from rich.console import Console

    return Progress(*columns, console=Console(stderr=True))


class LazyBar:
    """A progress bar that appears at the first update, so an input refused before any work
    prints its one ``error:`` line alone. Use as a context manager; ``update`` takes the total."""

    def __init__(self, what: str, *fields: str):
        self.what, self.fields = what, fields
        self.bar, self.task = None, None

    def update(self, completed: int, total: int | None, **values: str) -> None:
        if self.bar is None:
            self.bar = progress_bar(self.what, total, *self.fields)
            self.bar.start()
            self.task = self.bar.add_task(self.what, total=total, rate="", **{f: "-" for f in self.fields})
        self.bar.update(self.task, total=total, completed=completed, **values)

    def __enter__(self) -> "LazyBar":
        return self

    def stop(self) -> None:
        """Stop the bar now (it stays stopped: later updates are ignored)."""
        if self.bar is not None:
            self.bar.stop()
        self.bar, self.update = None, lambda *args, **kwargs: None  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        self.stop()
