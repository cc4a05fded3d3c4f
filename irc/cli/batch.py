"""Running encode/decode over many files: a progress bar, worker processes, a summary.

A bad file is reported in one line and the run goes on; the exit status is 1 if
any file failed. ``--jobs N`` runs N worker processes (spawned, so nothing of this
process's thread pools is inherited), each with cores // N torch threads, so the
jobs never ask for more threads than there are cores.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from irc.cli import work
from irc.cli.common import err, error_line, tile_progress


@dataclass
class Report:
    """Prints each file's result (a line, or a JSON object) and sums them up."""

    as_json: bool
    describe: object  # result dict -> the human line
    results: list[dict] = field(default_factory=list)
    above_bar: bool = False  # set while the file bar is live on the terminal stdout also goes to

    def __call__(self, res: dict) -> None:
        from rich.markup import escape

        self.results.append(res)
        if self.as_json:
            self.emit(json.dumps(res))
        if not res["ok"]:
            error_line(res["error"])
            return
        for note in res.get("notes", ()):
            err.print(f"[yellow]note:[/] {escape(res['input'])}: {escape(note)}", highlight=False, soft_wrap=True)
        if not self.as_json:
            self.emit(self.describe(res))

    def emit(self, line: str) -> None:
        """A result line to stdout. While the file bar is drawn and stdout is that same
        terminal, through the bar's console (above the bar, unwrapped); stdout that is a
        pipe or a file gets the bare line, never progress output."""
        if self.above_bar:
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    @property
    def failed(self) -> int:
        return sum(not r["ok"] for r in self.results)

    def summary(self, verb: str) -> str:
        done = [r for r in self.results if r["ok"]]
        b_in, b_out = sum(r["bytes_in"] for r in done), sum(r["bytes_out"] for r in done)
        ratio = f"{b_in / b_out:.2f}:1" if b_out else "-"
        failed = f", {self.failed} failed" if self.failed else ""
        return (f"{len(done)} of {len(self.results)} files {verb}{failed}; "
                f"{b_in:,} bytes in, {b_out:,} bytes out, ratio {ratio} (in:out)")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def run(fn, tasks: list[tuple[Path, Path]], force: bool, job, report: Report, *, jobs: int = 1,
        label: str = "", verb: str = "done", failed: list[dict] = ()) -> int:
    """Run ``fn`` (work.encode_file / decode_file) on each (input, output); returns how many failed.

    ``failed`` holds inputs already found bad before the run (reported first, counted).
    One file runs in this process with a tile progress bar and no summary line.
    """
    for res in failed:
        report(res)
    if len(tasks) + len(failed) == 1:
        for src, dest in tasks:
            with tile_progress(label) as prog:
                res = work.run_task(fn, src, dest, force, job, prog)
            report(res)  # after the bar is gone
        return report.failed
    if tasks:
        with _file_bar(label, len(tasks)) as advance:
            report.above_bar = err.is_terminal and sys.stdout.isatty()
            try:
                if jobs <= 1 or len(tasks) == 1:
                    for src, dest in tasks:
                        report(_guarded(fn, src, dest, force, job))
                        advance()
                else:
                    _parallel(fn, tasks, force, job, report, advance, min(jobs, len(tasks)))
            finally:
                report.above_bar = False
    line = report.summary(verb)
    if report.as_json:
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    else:
        report.emit(line)
    return report.failed


def _guarded(fn, src, dest, force, job) -> dict:
    """run_task, and in a batch even an unexpected error only fails its own file."""
    try:
        return work.run_task(fn, src, dest, force, job)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a bug on one odd file must not lose the rest of the batch
        return work.failure(src, f"internal error ({type(exc).__name__}: {exc})")


def _parallel(fn, tasks, force, job, report, advance, jobs: int) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from irc.models import registry

    threads = max(1, cores() // jobs)
    specs = list(registry._extra.values())  # models registered at run time (tests, user weights)
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=work.init_worker, initargs=(threads, specs))
    try:
        futures = {pool.submit(work.run_task, fn, src, dest, force, job): src for src, dest in tasks}
        for fut in as_completed(futures):
            try:
                res = fut.result()
            except Exception as exc:  # a worker that died (out of memory, killed) or a bug
                res = work.failure(futures[fut], f"internal error ({type(exc).__name__}: {exc})")
            report(res)
            advance()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


class _file_bar:
    """One progress bar over the files (stderr, gone when done)."""

    def __init__(self, label: str, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("files"), TimeElapsedColumn(), console=err, transient=True,
                            redirect_stdout=False, redirect_stderr=False)  # stdout stays clean (Report.emit)
        self.label, self.total = label, total

    def __enter__(self):
        if not err.is_terminal:  # logs and pipes get the result lines only
            return lambda: None
        self.bar.start()
        task = self.bar.add_task(self.label, total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc):
        if self.bar.live.is_started:
            self.bar.stop()
        return False
