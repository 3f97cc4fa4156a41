"""The demo tenant's leads: the intake and assignment story (story.py, with its parts
data, maker, tenant, timeline, work and ledger) and the board's day (board.py).
`manage.py seed_demo` calls `seed()`."""

from leads.demo.story import seed

__all__ = ["seed"]
