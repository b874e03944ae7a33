"""The hot paths' reads and writes (a claim, a task by token, a demonstration submit, a ranking's
context) behind one interface, `HotPath`, in two implementations:

- `PortableHotPath` (portable.py): the ORM. It runs on SQLite (`make run`) and on PostgreSQL
  when LABELAPP_HOT_PATH=orm; the test suite runs the hot-path contract on both.
- `PostgresHotPath` (postgres.py): the same operations as a few hand-written statements, the
  production path on PostgreSQL. Compiling the ORM's queries costs several times what the
  statements themselves cost here; docs/architecture.md has the A/B in one run
  (`bench/claim.py --paths`, `bench/ranking.py --paths`).

The queue's eligibility rule is defined once, as `WorkItem.objects.claimable_by`; the SQL path
embeds that queryset compiled, never a copy of it.
"""

from django.conf import settings
from django.db import connection

from annotations.hotpath.portable import Claim, DemonstrationWrite, PortableHotPath

__all__ = ["PORTABLE", "Claim", "DemonstrationWrite", "HotPath", "hot_path"]

HotPath = PortableHotPath  # the interface: every implementation is one of these


def hot_path() -> PortableHotPath:
    """The implementation for this database and LABELAPP_HOT_PATH (sql | orm)."""
    if connection.vendor == "postgresql" and settings.LABELAPP_HOT_PATH == "sql":
        from annotations.hotpath.postgres import POSTGRES

        return POSTGRES
    return PORTABLE


PORTABLE = PortableHotPath()
