"""Chat: messages and their history, chat modes, channel moderators, bans and timeouts."""
