"""``plipbench data``: make synthetic datasets and check local dataset copies."""

from __future__ import annotations

import typer

from plipbench.commands.data_check import check
from plipbench.commands.data_synth import synth

app = typer.Typer(help="Synthetic pedestrians and dataset checks.", no_args_is_help=True)
app.command("synth")(synth)
app.command("check")(check)
