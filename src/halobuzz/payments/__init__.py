"""Buying coins: payment intents, provider integrations, webhooks and reconciliation."""
