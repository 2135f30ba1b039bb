"""Alembic environment for Vigil's schema (configured in code by ``core.db.migrate``)."""
