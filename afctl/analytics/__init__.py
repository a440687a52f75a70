"""Analytics over the prompt log with DuckDB (read through its sqlite extension)."""
