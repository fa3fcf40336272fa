"""Hardened per-trajectory Docker workspaces and the in-container tool server."""
