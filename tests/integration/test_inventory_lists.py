"""The product lists (`GET /api/inventory`) at scale: the trigram indexes behind `q=` keep a short pending
list, a page is cut on ids before anything is joined, and a kept page is never served after a
write that changed it (with Redis shared by two replicas, and with the read caches off)."""

from __future__ import annotations

import pytest
from sqlalchemy import text



@pytest.mark.postgres
def test_trigram_indexes_keep_a_short_pending_list(app, backend: str) -> None:  # noqa: ANN001
    if backend != "postgresql":
        pytest.skip("trigram indexes exist on PostgreSQL only")
    with app.state.db.read() as session:
        options = dict(session.execute(text(
            "SELECT c.relname, array_to_string(c.reloptions, ',') FROM pg_class c "
            "WHERE c.relname LIKE 'ix_productos_%_trgm'")).all())
    assert options == {f"ix_productos_{column}_trgm": "gin_pending_list_limit=256"
                       for column in ("nombre", "sku", "marca")}
