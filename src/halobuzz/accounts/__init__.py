"""Users, sign-in sessions and tokens, roles, follows, blocks, 2FA."""
