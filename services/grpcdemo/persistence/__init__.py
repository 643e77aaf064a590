"""Database plumbing both services use: engines for SQLite and PostgreSQL, repository operations
(one connection per operation, timed, outages turned into UNAVAILABLE-kind errors) and Alembic
migrations run on the service's own engine.

Imports: SQLAlchemy, Alembic, prometheus_client and grpcdemo.errors; never the services.
"""
