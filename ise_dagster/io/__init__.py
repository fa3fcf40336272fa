"""Storage at the edge: the Parquet IO manager."""
