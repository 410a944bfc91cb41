"""`python -m minimarket` is the `minimarket` command."""

from minimarket.cli.main import app

app(prog_name="minimarket")
