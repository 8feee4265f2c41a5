"""The error for a zoo.cfg that Apache would refuse."""

from __future__ import annotations


class ConfigError(ValueError):
    """A zoo.cfg that Apache would refuse; the message names the key and value."""

