from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.databases import database
from tests.support.services import Stack, running_stack


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def stack(db_kind: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with (
        database(db_kind, tmp_path, "userd") as userd_db,
        database(db_kind, tmp_path, "orderd") as orderd_db,
        running_stack(userd_db, orderd_db) as running,
    ):
        yield running
