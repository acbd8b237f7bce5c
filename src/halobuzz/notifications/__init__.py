"""Notifications: stored, real-time, and delivered by web push, email, SMS and mobile push."""
