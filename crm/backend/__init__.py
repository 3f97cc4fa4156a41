"""PostgreSQL, as Django's backend, knowing that a tenant table's key is (tenant_id, id)."""
