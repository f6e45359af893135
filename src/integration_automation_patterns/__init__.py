"""Reliability patterns for enterprise integration."""

__version__ = "0.3.0.dev0"
