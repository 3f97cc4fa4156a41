"""The rows a report's tables are made of, for every app's report (the lead-quality
report, the service report): a row of named figures, each with its value, its text and
the link to the rows it counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Cell:
    """One figure: its machine value (for tests and CSV: counts, minutes, 0–1 for rates),
    its text, the link to the rows behind it."""

    name: str
    value: int | float | None
    text: str
    url: str = ""


@dataclass
class Row:
    key: str
    label: str
    cells: list[Cell]
    is_total: bool = False

    def cell(self, name: str) -> Cell:
        return next(c for c in self.cells if c.name == name)
