"""Tenant admin for customer health."""

from health import admin_signals  # noqa: F401  signals and tracked links
