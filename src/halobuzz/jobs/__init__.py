"""Scheduled jobs: the cron table (schedule.py), cleanup and the daily report."""
