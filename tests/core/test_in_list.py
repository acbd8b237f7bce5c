"""``core.db.in_list``: a prebuilt statement's list bound at run time, on either backend."""

from __future__ import annotations

from sqlalchemy import select

from halobuzz.accounts.models import User
from halobuzz.core.db import in_list

BY_ID = select(User.username).where(in_list(User.id, "ids")).order_by(User.username)
# The same list twice in one statement, and a second list.
EITHER = select(User.username).where(
    (in_list(User.id, "ids") & in_list(User.username, "names")) | in_list(User.id, "ids")
)


async def test_one_statement_for_lists_of_any_length(app, make_user):
    users = sorted([await make_user() for _ in range(3)], key=lambda u: u.username)
    async with app.runtime.db.session(write=False) as s:
        for n in (0, 1, 3):
            ids = [u.id for u in users[:n]]
            assert list((await s.scalars(BY_ID, {"ids": ids})).all()) == [u.username for u in users[:n]]
        names = set((await s.scalars(EITHER, {"ids": [users[0].id], "names": ["nobody"]})).all())
        assert names == {users[0].username}
    dialect = app.runtime.db.write_engine.dialect
    sql = str(BY_ID.compile(dialect=dialect))
    assert ("= ANY" in sql) == (dialect.name == "postgresql")
    assert "= 1" not in sql  # a plain condition, no boolean comparison that would hide an index
