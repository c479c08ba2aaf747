"""A delivery process for the kill -9 test: ``python -m tests.deliver_proc CONFIG``; sends until the outbox is empty."""

from __future__ import annotations

import asyncio
import sys

import httpx
from sqlalchemy import func, select

from alerts.delivery import Deliverer, build_channels
from monitor.clock import SystemClock
from monitor.config import load_config
from monitor.db import make_engine
from monitor.db.schema import notifications


async def main(config_path: str) -> None:
    """Deliver until nothing is pending or sending."""
    config = load_config(config_path)
    engine = make_engine(config.database_url())
    clock = SystemClock()
    async with httpx.AsyncClient() as http:
        deliverer = Deliverer(engine, config, clock, build_channels(config, http, clock))
        await deliverer.recover()
        print("ready", flush=True)
        while True:
            await deliverer.run_once()
            with engine.connect() as conn:
                left = conn.execute(select(func.count()).select_from(notifications).where(
                    notifications.c.status.in_(("pending", "sending")))).scalar_one()
            if not left:
                return
            await asyncio.sleep(0.01)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
