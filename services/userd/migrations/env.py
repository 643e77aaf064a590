from grpcdemo.persistence.migrations import run_env

from userd.storage.schema import metadata

run_env(metadata, default_version_table="alembic_version_userd")
