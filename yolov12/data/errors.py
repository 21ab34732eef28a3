"""Exceptions of the data layer; each message names the bad input, where it was found and how to fix it."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset description or its files cannot be used as given."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset, split or file named in the configuration does not exist (locally or offline)."""


class RemoteStorageError(DatasetError):
    """An ``s3://`` location cannot be listed or downloaded."""


class UnsafeObjectKeyError(RemoteStorageError):
    """An object key cannot become a local path: it would leave its folder or collide with another file.

    The arguments are kept as ``(bucket, key, reason)`` so that the error pickles (Ray sends errors between
    processes) and callers can report the key.
    """

    def __init__(self, bucket: str, key: str, reason: str) -> None:
        super().__init__(bucket, key, reason)
        self.bucket, self.key, self.reason = bucket, key, reason

    def __str__(self) -> str:
        shown = repr(self.key) if len(self.key) <= 200 else repr(self.key[:200]) + "..."
        return (f"refusing object key {shown} of bucket {self.bucket!r}: {self.reason}; rename the object (a key "
                "must be a relative path of plain names: no leading '/', no '.', '..' or empty segments, "
                "no backslash or control characters)")
