"""The references between tenant rows, as model fields (the keys themselves: crm/keys.py).

Django keeps `id` as a tenant model's primary key, but the database keys each tenant table
`(tenant_id, id)`, so there is no unique index on `id` alone for Django's own
single-column constraint to point at: these fields create none, and `crm.keys.install()`
makes the composite one after every `migrate`.
"""

from __future__ import annotations

from django.db import models


class TenantForeignKey(models.ForeignKey):
    """A reference from a tenant row to a row of another tenant model (or its own).

    No single-column constraint in the database: `install()` creates the composite one,
    `(tenant_id, <column>) → (tenant_id, id)`, which also refuses another tenant's row.
    """

    def __init__(self, *args, **kwargs):
        kwargs["db_constraint"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("db_constraint", None)
        return name, path, args, kwargs


class TenantOneToOneField(models.OneToOneField):
    """A one-to-one between tenant rows: the composite foreign key as `TenantForeignKey`,
    and no unique index on the column alone. The model declares the uniqueness itself,
    tenant first: `models.UniqueConstraint(fields=["tenant", "<field>"], name=…)`."""

    def __init__(self, *args, **kwargs):
        kwargs["db_constraint"] = False
        super().__init__(*args, **kwargs)
        self._unique = False

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("db_constraint", None)
        kwargs.pop("unique", None)
        return name, path, args, kwargs
