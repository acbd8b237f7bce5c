"""The AI engine: text moderation (profanity, slurs, spam, personal data) and its policy."""
