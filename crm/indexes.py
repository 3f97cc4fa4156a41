"""Index classes the models share."""

from __future__ import annotations

from django.db import models


class NullsOrderIndex(models.Index):
    """An index whose expressions place NULLs (`F("x").desc(nulls_last=True)`), so that a
    sort with the same placement is read from it in order. A plain index: the class name
    tells why the expressions are written that way (and migrations refer to it)."""
