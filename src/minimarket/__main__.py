"""`python -m minimarket` is the `minimarket` command."""

from minimarket.cli import app

app(prog_name="minimarket")
