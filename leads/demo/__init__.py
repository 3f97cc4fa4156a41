"""The demo tenant's leads: the intake and assignment story (story.py) and the board's
day (board.py). `manage.py seed_demo` calls `seed()`."""

from leads.demo.story import seed

__all__ = ["seed"]
