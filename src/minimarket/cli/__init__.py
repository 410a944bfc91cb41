"""The `minimarket` command (Typer + Rich): `main` builds the app, one module per command group."""
