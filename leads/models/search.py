"""The lead search's index: the character grams of each lead's company, contact and phone.

Under row-level security PostgreSQL uses an index only for leakproof operators: `LIKE`
is not one, so a trigram index on the lead table sits unused and every search reads the
whole tenant. Text equality and comparison are leakproof: this table turns "contains"
into equality on a btree keyed (tenant, gram, lead), which the planner uses under the
policy like any other index (docs/decisions.md, "Lead search through a gram table").

Filled and kept by triggers on `leads_lead` (migration 0013), so every path that writes
a lead (the ORM, bulk loads, imports, COPY, cascades) keeps it true; the application
only reads it (`leads.search`). No `public_id`: its rows are never addressed one by one.
"""

from django.db import models

from crm.models import Tenant


class SearchGram(models.Model):
    """One gram of one lead: for the company and the contact name (lower-cased), the two
    characters starting at each position (the last character alone); for the phone's
    digits, "#" and the three digits starting at each position."""

    pk = models.CompositePrimaryKey("tenant_id", "gram", "lead_id")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False, related_name="+")
    # No database constraint: the triggers remove a deleted lead's grams by primary key;
    # a constraint would need an index on lead_id (the size of the table again).
    lead = models.ForeignKey(
        "leads.Lead",
        on_delete=models.DO_NOTHING,
        db_index=False,
        db_constraint=False,
        related_name="+",
    )
    # Byte order ("C"): a one-character term is the range [c, next code point).
    gram = models.CharField(max_length=5, db_collation="C")

    class Meta:
        db_table = "leads_searchgram"
        verbose_name = "search gram"

    def __str__(self):
        return self.gram
