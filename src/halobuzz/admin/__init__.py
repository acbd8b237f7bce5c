"""Administration: users, roles, suspensions and bans, audit log."""
