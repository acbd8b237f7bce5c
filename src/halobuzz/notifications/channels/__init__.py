"""Delivery channels, each behind the small ``Channel`` interface (channels/base.py)."""
