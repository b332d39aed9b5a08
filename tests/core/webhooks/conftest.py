from __future__ import annotations

import pytest

from tests.conftest import app_client, make_user, sign_in
from tests.core.webhooks.helpers import Declares, Receiver


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
async def hooks_client(make_rapport):
    """An administrator's client on an instance that allows private receivers (the test's
    receiver is on 127.0.0.1) and retries failed jobs at once."""
    instance = await make_rapport(extra={"jobs_backoff_seconds": "0",
                                         "webhooks_allow_private": "1"})
    instance.pm.register(Declares(), name="testing_declares")
    async with app_client(instance) as client:
        client.user_id = await make_user("admin@example.test")
        await sign_in(client, "admin@example.test")
        yield client
