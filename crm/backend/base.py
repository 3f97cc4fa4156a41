"""Django's PostgreSQL backend, with one difference (crm/keys.py).

Django groups an aggregate query by a model's primary key alone and lets PostgreSQL take
the row's other columns as depending on it. In the database, a tenant table's primary key
is `(tenant_id, id)`, not Django's `id`, so PostgreSQL refuses that ("must appear in the
GROUP BY clause"): for those models Django groups by the selected columns instead.
"""

from __future__ import annotations

from django.db.backends.postgresql import base, features


def _keyed_by_tenant(model) -> bool:
    opts = model._meta
    if any(f.column == "tenant_id" for f in opts.concrete_fields):
        return True
    # A many-to-many link table between tenant rows: its tenant_id is the database's only.
    return bool(opts.auto_created) and any(
        f.is_relation and _keyed_by_tenant(f.related_model) for f in opts.concrete_fields
    )


class DatabaseFeatures(features.DatabaseFeatures):
    def allows_group_by_selected_pks_on_model(self, model):
        if _keyed_by_tenant(model):
            return False
        return super().allows_group_by_selected_pks_on_model(model)


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
