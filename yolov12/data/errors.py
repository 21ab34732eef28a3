"""Exceptions of the data layer; each message names the bad input, where it was found and how to fix it."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset description or its files cannot be used as given."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset, split or file named in the configuration does not exist (locally or offline)."""


class RemoteStorageError(DatasetError):
    """An ``s3://`` location cannot be listed or downloaded."""
