"""The zoned lake: one storage root reached through a pyarrow filesystem, local or S3."""

from lakeplane.storage.filesystem import LakeStorage, Zone, open_storage

__all__ = ["LakeStorage", "Zone", "open_storage"]
