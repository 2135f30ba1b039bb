"""The database layer: models, migrations, the ``Database`` handle and the ``Repository``.

Nothing outside this package sees a SQLAlchemy or driver exception: every failure leaves it as
a ``core.db.errors.DatabaseError`` carrying a ``category`` and the ``operation`` that failed.
"""
