"""Embeddings, near-duplicate removal and the Vendi diversity score."""
