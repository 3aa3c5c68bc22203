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


class Rate:
    """Items a second since the count started, for a progress bar's rate column. A count that
    goes back starts again: the temporal fit's second stage counts its steps from 0, and timed
    from the call's start a stream's frames would include the minutes of fitting before them."""

    def __init__(self, clock=None):
        import time

        self.clock = clock or time.perf_counter
        self.start: tuple[float, int] | None = None
        self.last = 0

    def __call__(self, count: int) -> float:
        now = self.clock()
        if self.start is None or count < self.last:
            self.start = (now, count)
        self.last = count
        since, first = self.start
        return (count - first) / max(now - since, 1e-9)


class LazyBar:
    """A progress bar that appears at the first update, so an input refused before any work
    prints its one ``error:`` line alone. Use as a context manager; ``update`` takes the total.

    When stderr is not a terminal (a background job writing a log) a live bar would print
    nothing until the end, so a plain line is written every ``log_every`` seconds instead."""

    def __init__(self, what: str, *fields: str, log_every: float = 60.0):
        self.what, self.fields = what, fields
        self.bar, self.task = None, None
        self.plain = not sys.stderr.isatty()
        self.log_every, self.last_log = log_every, None

    def update(self, completed: int, total: int | None, **values: str) -> None:
        if self.plain:
            self._log_line(completed, total, values)
            return
        if self.bar is None:
            self.bar = progress_bar(self.what, total, *self.fields)
            self.bar.start()
            self.task = self.bar.add_task(self.what, total=total, rate="", **{f: "-" for f in self.fields})
        self.bar.update(self.task, total=total, completed=completed, **values)

    def _log_line(self, completed: int, total: int | None, values: dict[str, str]) -> None:
        import time

        now = time.monotonic()
        if self.last_log is None:
            self.last_log, self.started = now, (now, completed)
            return
        if now - self.last_log < self.log_every and completed != total:
            return
        rate = (completed - self.started[1]) / max(now - self.started[0], 1e-9)
        fields = "".join(f", {k} {v}" for k, v in values.items())
        of = f"/{total}" if total is not None else ""
        print(f"{self.what}: {completed}{of}{fields} ({rate:.2f}/s)", file=sys.stderr, flush=True)
        self.last_log = now

    def __enter__(self) -> "LazyBar":
        return self

    def stop(self) -> None:
        """Stop the bar now (it stays stopped: later updates are ignored)."""
        if self.bar is not None:
            self.bar.stop()
        self.bar, self.update = None, lambda *args, **kwargs: None  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        self.stop()
