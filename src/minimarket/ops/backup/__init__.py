"""Backups: archive, restore (and its target), the manifest that describes a database, `db migrate-to`,
and the nightly scheduler."""
