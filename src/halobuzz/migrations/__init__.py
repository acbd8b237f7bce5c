"""Alembic migrations (shipped inside the package so `halobuzz migrate` works wherever it is installed)."""
