"""The opportunities app's tiles on the manager dashboard (crm.dashboard), registered from
opportunities.registrations after its metrics (opportunities.metrics): opened, won
(charted day by day) and the amount signed."""

from __future__ import annotations

from crm.dashboard import Tile, register_tile


def register() -> None:
    register_tile(Tile("opportunities.created", metric="opportunities.created", order=40))
    register_tile(Tile("opportunities.won", metric="opportunities.won", order=50, chart=True))
    register_tile(Tile("opportunities.won_amount", metric="opportunities.won_amount", order=60))
