"""Reading and writing one row of ``core_instance_setting`` (a key and a text value)."""

from __future__ import annotations

from datetime import UTC, datetime

from core.instance import InstanceSetting


async def read(key: str) -> str | None:
    row = await InstanceSetting.select(InstanceSetting.value).where(
        InstanceSetting.key == key).first().run()
    return None if row is None else row["value"]


async def write(key: str, value: str) -> None:
    now = datetime.now(UTC)
    if await InstanceSetting.exists().where(InstanceSetting.key == key).run():
        await InstanceSetting.update({InstanceSetting.value: value,
                                      InstanceSetting.updated_at: now}).where(
            InstanceSetting.key == key).run()
    else:
        await InstanceSetting.insert(InstanceSetting(key=key, value=value, updated_at=now)).run()
