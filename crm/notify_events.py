"""The notification event types (F44): what an app registers and a notification renders with.

Apps register their event types with `crm.notify.register_event` (which checks them) in
their AppConfig.ready(). A stored Notification keeps an event code and its parameters and
is worded when read (`Notification.title`, `.body`) by `get_event_type` and
`render_template` here. This module imports no model, so crm.models can read it.
"""

from __future__ import annotations

from dataclasses import dataclass

# The in-app channel: the bell. Every recipient gets it; the external ones are
# crm.models.OutletKind.
IN_APP = "in_app"


@dataclass(frozen=True)
class EventType:
    key: str  # e.g. "sla.a_unassigned"
    label: str  # lazy, for the preferences page
    title: str  # lazy %-template over params
    body: str = ""  # lazy %-template
    default_channels: tuple[str, ...] = (IN_APP,)  # when the member set no preference
    roles: frozenset[str] | None = None  # roles that may receive it; None = all


_registry: dict[str, EventType] = {}


def add_event_type(event_type: EventType) -> None:
    """Store a checked event type (crm.notify.register_event checks it, then calls this)."""
    _registry[event_type.key] = event_type


def event_types() -> list[EventType]:
    return sorted(_registry.values(), key=lambda e: e.key)


def get_event_type(key: str) -> EventType | None:
    return _registry.get(key)


def event_types_for(role: str) -> list[EventType]:
    """The events a member with `role` may receive (the preferences page's rows)."""
    return [e for e in event_types() if e.roles is None or role in e.roles]


def render_template(template, params: dict | None) -> str:
    """A lazy %-template in the active language, filled with `params`."""
    text = str(template)
    try:
        return text % (params or {})
    except (KeyError, TypeError, ValueError):
        return text
