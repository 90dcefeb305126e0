"""The one Iceberg catalog of a lake: SQLite by default, PostgreSQL when shared."""

from lakeplane.catalog.catalog import LakeCatalog, TableRef

__all__ = ["LakeCatalog", "TableRef"]
