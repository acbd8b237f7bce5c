"""Reports, the review queue, enforcement actions, appeals and reputation (docs/moderation.md)."""
