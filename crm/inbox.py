"""The inbox's handlers by channel type: a registry, as crm.board is for the board.

The leads app owns the inbox (`leads.Channel`, `leads.InboundEvent`, POST /hooks/<key>/,
the processing task and the re-process action). By default an inbox event becomes a
lead. Another app takes the events of a channel type of its own without the leads app
importing it: in its AppConfig.ready(),

    from crm.inbox import InboxHandler, register_handler

    register_handler(
        InboxHandler(
            channel_type="helpdesk",
            label=_("Helpdesk tickets"),
            presets={"zendesk": _("Zendesk ticket event"), …},
            process=process_events,  # (events) -> None
            verify_native=verify_native,  # (channel, request, body) -> problem | None
        )
    )

- `process(events)` runs inside the events' tenant, in the worker's transaction, with the
  claimed events (`leads.InboundEvent`, their `channel` loaded). It calls
  `mark_processed(event)` or `mark_failed(event, error)` for each; the inbox saves them
  (an event left unmarked fails). An exception fails every unmarked event of the call.
  Failed events are re-processed by the inbox's own re-process action.
- `presets` are the payload formats a channel of the type may declare (`Channel.preset`,
  at most 20 characters); the blank preset is the handler's own field names.
- `verify_native(channel, request, body)`, when given, proves a request that does not
  carry our own X-CRM-Signature by the sender's native signing (e.g. Zendesk's): it
  returns None when the request is genuine, else the problem (answered 401). Presets in
  `app_id_presets` need the sender's app ID on the channel (`Channel.native_app_id`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# The inbox's event states, as leads.EventStatus stores them.
PROCESSED = "processed"
FAILED = "failed"


@dataclass(frozen=True)
class InboxHandler:
    channel_type: str
    label: str  # lazy: what the channel type's events become
    process: Callable = field(compare=False)
    presets: dict[str, str] = field(default_factory=dict, compare=False)  # code → lazy label
    verify_native: Callable | None = field(default=None, compare=False)
    # Presets whose native signing needs the sender's app ID (Channel.native_app_id).
    app_id_presets: frozenset[str] = frozenset()


_registry: dict[str, InboxHandler] = {}


def register_handler(handler: InboxHandler) -> None:
    """Register (or replace) the handler of `handler.channel_type`."""
    for code in handler.presets:
        if not code or len(code) > 20:
            raise ValueError(f"preset {code!r}: 1 to 20 characters (the blank one is implied)")
    _registry[handler.channel_type] = handler


def unregister_handler(channel_type: str) -> None:
    _registry.pop(channel_type, None)


def handler_for(channel_type: str) -> InboxHandler | None:
    return _registry.get(channel_type)


def handlers() -> list[InboxHandler]:
    return sorted(_registry.values(), key=lambda h: h.channel_type)


def needs_app_id(channel_type: str, preset: str) -> bool:
    handler = handler_for(channel_type)
    return handler is not None and preset in handler.app_id_presets


def preset_choices() -> list[tuple[str, str]]:
    """Every registered handler's presets, as (code, label) choices."""
    return [(code, label) for h in handlers() for code, label in h.presets.items()]


def mark_processed(event) -> None:
    event.status, event.error, event.error_detail = PROCESSED, "", {}


def mark_failed(event, error: str) -> None:
    """The event failed; `error` (plain text, in English: the event's technical record)
    is shown in the inbox and the event can be re-processed there."""
    event.status, event.error, event.error_detail = FAILED, str(error)[:2000], {}
