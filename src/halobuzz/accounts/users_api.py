"""Routes: profiles, avatars, follows and blocks under /users."""

from __future__ import annotations

from fastapi import APIRouter

users_router = APIRouter(prefix="/users", tags=["users"])
