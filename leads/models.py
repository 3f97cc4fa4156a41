"""Channels, the inbound-event inbox, mapping, validation, de-duplication, tagging, leads,
weighted assignment, SLA clocks and the daily board."""
