"""CLI command groups. Module level imports here must stay light (typer, rich, stdlib)."""
