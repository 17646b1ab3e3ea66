"""Wrappers for gsenv's batched environments."""
from gsenv.wrappers.time_limit import BatchTimeLimit
from gsenv.wrappers.video import RecordVideo

__all__ = ["BatchTimeLimit", "RecordVideo"]
