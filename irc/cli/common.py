"""What every command shares: the two consoles, one-line errors, the tile progress bar."""

from __future__ import annotations

from contextlib import contextmanager

import typer
from rich.console import Console

from irc.errors import IrcError

out = Console()  # results (stdout)
err = Console(stderr=True)  # errors, notes, progress (stderr)


def fail(message: str, code: int = 1):
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def error_line(message: str) -> None:
    """One error line on stderr without leaving (a bad file in a batch)."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


@contextmanager
def user_errors():
    """Turn expected failures into one line on stderr and a non-zero exit."""
    from rich.markup import escape

    try:
        yield
    except IrcError as exc:
        fail(escape(str(exc)))
    except KeyboardInterrupt:
        fail("interrupted; no file is left half-written", 130)
    except MemoryError:
        fail("out of memory; try a smaller --tile")
    except OSError as exc:
        fail(escape(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")))
    except ValueError as exc:  # bad training data and the like, raised below the CLI
        fail(escape(str(exc)))


@contextmanager
def tile_progress(label: str):
    """Yield a factory total -> advance() that shows a progress bar over tiles.

    The bar starts only when the work starts, so an early error prints nothing else,
    and only on a terminal.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} tiles"),
                   TimeElapsedColumn(), console=err, transient=True)

    def factory(total: int):
        if not err.is_terminal:  # logs and pipes get no bar (Rich would leave a blank line)
            return lambda: None
        bar.start()
        task = bar.add_task(label, total=total)
        return lambda: bar.advance(task)

    try:
        yield factory
    finally:
        if bar.live.is_started:
            bar.stop()
