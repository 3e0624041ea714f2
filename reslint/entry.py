"""The `reslint` command's entry point (console script and `python -m reslint`).

A running daemon of this project answers before anything heavy is imported: the CLI module pulls in
typer and rich (~0.1 s of a client that only forwards its argv). Without a usable daemon, the CLI runs
here as always.
"""

from __future__ import annotations

import sys


def main() -> None:
    from reslint.daemon import forward  # the client half: no torch, no typer

    code = forward(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from reslint.cli import app

    app()
