"""Index classes the models share."""

from __future__ import annotations

import copy

from django.db import models
from django.db.models.expressions import OrderBy


class NullsOrderIndex(models.Index):
    """An index whose expressions place NULLs (`F("x").desc(nulls_last=True)`), so that a
    sort with the same placement is read from it in order, on PostgreSQL.

    SQLite (`make run`) accepts NULLS FIRST/LAST in ORDER BY but not in an index: there the
    same columns are indexed without the placement (the sort still comes out right, it is
    only not read from the index). Kept as a class of its own so that SQLite's table
    rebuilds in later migrations, which re-create every index, do the same."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        index = self
        if schema_editor.connection.vendor != "postgresql":
            index = copy.copy(self)
            index.expressions = tuple(
                OrderBy(e.expression, descending=e.descending) if isinstance(e, OrderBy) else e
                for e in self.expressions
            )
        return models.Index.create_sql(index, model, schema_editor, using=using, **kwargs)
