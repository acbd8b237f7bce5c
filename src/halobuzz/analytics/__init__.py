"""Numbers about streams for their creators: per-broadcast viewers, chat and gifts."""
