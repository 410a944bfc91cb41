"""Argentine rules as pure functions: barcodes, CUIT, IVA, money format."""
