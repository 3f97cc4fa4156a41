"""Customer health's business events (F47, crm.events): a customer entered the risk list,
a behaviour signal was recorded. Emitted in the transaction that writes them."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.events import EventKind, emit_many, event_row, register_kind

RISK_ENTERED = "health.risk_entered"
SIGNAL = "health.signal"


def register() -> None:
    register_kind(
        EventKind(
            RISK_ENTERED,
            _("Customer entered the risk list"),
            {"score": int, "weakest": str, "action": str, "owner_id": int, "customer_id": int},
            keyed_by="customer",
        )
    )
    register_kind(
        EventKind(
            SIGNAL,
            _("Customer behaviour signal recorded"),
            {"kind": str, "query": str, "url": str, "competitor": str, "customer_id": int},
            keyed_by="customer",
        )
    )


def emit_risk_entered(entries, *, at=None) -> None:
    """Today's new stays, at the recompute's time `at` (now by default)."""
    emit_many(
        [
            event_row(
                RISK_ENTERED,
                entry,
                key=f"customer:{entry.customer_id}",
                at=at,
                score=entry.score,
                weakest=entry.weakest,
                action=entry.action,
                owner_id=entry.owner_id,
                customer_id=entry.customer_id,
            )
            for entry in entries
        ]
    )


def emit_signals(signals) -> None:
    emit_many(
        [
            event_row(
                SIGNAL,
                signal,
                key=f"customer:{signal.customer_id}",
                at=signal.at,
                kind=signal.kind,
                query=signal.query,
                url=signal.url[:200],
                competitor=signal.competitor,
                customer_id=signal.customer_id,
            )
            for signal in signals
        ]
    )
