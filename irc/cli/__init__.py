"""The `irc` command line: thin, it parses, calls irc.api / irc.train, and prints.

    coding.py    encode, decode, extract (outputs.py checks every output first;
                 batch.py runs many files, work.py is one file's work)
    tools.py     info, models, sample        bench.py   bench
    training.py  train irn|crm|export        common.py  consoles, one-line errors
    campaign.py  train campaign (continue, measure, ship a new weight version)
    irn_plus.py  train irn-plus (the IRN paper's GAN stage from a registered IRN)
    hcflow.py    train hcflow (HCFlow rescaling; train_options.py: the trainers' shared flags)
    irn_color.py train color (IRN_color: colour <-> grayscale carrier)
    bdflow.py    train bdflow (BDFlow extreme rescaling)
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

# campaign, hcflow, irn_color and irn_plus add `train campaign|hcflow|color|irn-plus` to training's train_app
from irc.cli import bdflow, bench, campaign, coding, hcflow, irn_color, irn_plus, tools, training  # noqa: F401
from irc.cli.common import err, fail, out, tile_progress, user_errors  # noqa: F401  (used by callers of irc.cli)

app = typer.Typer(
    name="irc",
    help="irc: image codec with a learned invertible downscaler (IRN).\n\n"
    "Examples:\n\n"
    "  irc sample                                     # -> photo.png, a photo to try\n\n"
    "  irc encode photo.png -s 4 --codec jpeg -q 40   # -> photo.irc\n\n"
    "  irc decode photo.irc                           # -> photo.png, original size\n\n"
    "  irc encode *.png -o out/ --jobs 2              # many files\n\n"
    "  irc info photo.irc --json\n\n"
    "  irc extract photo.irc                          # the LR thumbnail, byte-exact\n\n"
    "  irc models",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version("irc")
    except PackageNotFoundError:  # run from a source tree that is not installed
        from irc import __version__

        return __version__


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"irc {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Optional[bool] = typer.Option(None, "--version", callback=_show_version, is_eager=True,
                                                help="Print the version and exit."),
):
    """irc: image codec with a learned invertible downscaler (IRN)."""


app.command()(coding.encode)
app.command()(coding.decode)
app.command()(tools.info)
app.command()(coding.extract)
app.command()(tools.sample)
app.command()(tools.models)
app.command()(bench.bench)
app.add_typer(training.train_app, name="train")


def main() -> None:  # console-script entry point
    try:
        app()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
