"""Streams, stream keys, broadcasts (go-live history) and categories."""
