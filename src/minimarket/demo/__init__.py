"""The demo store: a generator of products, suppliers and history, and the catalogue it draws from."""
