"""Request glue shared by every area's routers: dependencies (database, settings, caller) and
the idempotent write. Areas import it; it imports no area's routers."""
