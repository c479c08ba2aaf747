"""Storage: schema, engine set-up, migrations and the Store the daemon writes through."""

from monitor.db.engine import make_engine
from monitor.db.migrate import upgrade
from monitor.db.store import RunSummary, SourceState, Store

__all__ = ["RunSummary", "SourceState", "Store", "make_engine", "upgrade"]
