"""Outbound webhooks: signed deliveries of domain events to integrators' endpoints (docs/events.md)."""
