"""Wrappers for gsenv's batched environments."""
from gsenv.wrappers.time_limit import BatchTimeLimit

__all__ = ["BatchTimeLimit"]
