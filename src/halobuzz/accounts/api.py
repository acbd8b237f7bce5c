"""Routes: /auth and the signed-in user's account settings under /users/me."""

from __future__ import annotations

from fastapi import APIRouter

auth_router = APIRouter(prefix="/auth", tags=["auth"])
account_router = APIRouter(prefix="/users/me", tags=["account"])
