"""Routes: /streams and /categories."""

from __future__ import annotations

from fastapi import APIRouter

streams_router = APIRouter(prefix="/streams", tags=["streams"])
categories_router = APIRouter(prefix="/categories", tags=["categories"])
