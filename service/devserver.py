"""Placeholder replaced by the service issue."""
