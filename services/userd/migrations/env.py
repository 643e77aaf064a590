from grpcdemo.persistence.migrations_env import run

from userd.storage.schema import Base

run(Base.metadata, default_version_table="alembic_version_userd")
