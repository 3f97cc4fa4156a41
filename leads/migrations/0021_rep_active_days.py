import uuid

import django.db.models.deletion
import django.db.models.manager
from django.db import migrations, models

from crm.rls import unforce

# leads_repactiveday (leads.models.RepActiveDay): the local days on which a member acted,
# from four sources: customers_interaction (by_id, a member), leads_leadevent and
# crm_auditevent (actor_id, a user: the tenant's member of that user) and
# leads_dailysummary (membership_id, day). The day of an instant is its date in the
# tenant's time zone.
#
# Triggers, so that every path (ORM, imports, COPY, cascades, SET NULL of a deleted user)
# keeps the rows exact: statement-level with transition tables for INSERT (one INSERT …
# ON CONFLICT DO NOTHING per statement, in key order) and DELETE (the days the deleted
# rows were on are checked again: a day with no activity left loses its row), row-level
# with a WHEN clause for UPDATE (only when the member, the user, the time or the day
# moves). A new seat gets the days its user already acted in the tenant (history brought
# in before the seat); a deleted seat loses its rows. Two transactions only ever wait on
# each other on the first activity of a member on a day, for the unique key.
# leads_rep_days_rebuild(tenant) recomputes a tenant's rows from the sources (the
# backfill below, and `leads.rep_days.rebuild` when the tenant's time zone changes).
TABLES = (
    "leads_repactiveday",
    "customers_interaction",
    "leads_leadevent",
    "leads_dailysummary",
    "crm_auditevent",
    "crm_membership",
    "crm_tenant",
)

# Each source's (tenant_id, membership_id, day) from rows `r` (a transition table, or
# one row as `(SELECT NEW.*) r`).
SOURCES = {
    "customers_interaction": (
        "SELECT r.tenant_id, r.by_id AS membership_id,"
        " (r.at AT TIME ZONE t.timezone)::date AS day"
        " FROM {rows} r JOIN crm_tenant t ON t.id = r.tenant_id WHERE r.by_id IS NOT NULL",
        "OLD.by_id IS DISTINCT FROM NEW.by_id OR OLD.at IS DISTINCT FROM NEW.at"
        " OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id",
    ),
    "leads_leadevent": (
        "SELECT r.tenant_id, m.id AS membership_id, (r.at AT TIME ZONE t.timezone)::date AS day"
        " FROM {rows} r JOIN crm_tenant t ON t.id = r.tenant_id"
        " JOIN crm_membership m ON m.tenant_id = r.tenant_id AND m.user_id = r.actor_id",
        "OLD.actor_id IS DISTINCT FROM NEW.actor_id OR OLD.at IS DISTINCT FROM NEW.at"
        " OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id",
    ),
    "crm_auditevent": (
        "SELECT r.tenant_id, m.id AS membership_id, (r.at AT TIME ZONE t.timezone)::date AS day"
        " FROM {rows} r JOIN crm_tenant t ON t.id = r.tenant_id"
        " JOIN crm_membership m ON m.tenant_id = r.tenant_id AND m.user_id = r.actor_id",
        "OLD.actor_id IS DISTINCT FROM NEW.actor_id OR OLD.at IS DISTINCT FROM NEW.at"
        " OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id",
    ),
    "leads_dailysummary": (
        "SELECT r.tenant_id, r.membership_id, r.day FROM {rows} r",
        "OLD.membership_id IS DISTINCT FROM NEW.membership_id OR OLD.day IS DISTINCT FROM NEW.day"
        " OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id",
    ),
}

ADD = """
  INSERT INTO leads_repactiveday (tenant_id, public_id, membership_id, day)
  SELECT tenant_id, gen_random_uuid(), membership_id, day FROM (
    SELECT DISTINCT tenant_id, membership_id, day FROM ({pairs}) p
  ) d ORDER BY tenant_id, membership_id, day
  ON CONFLICT (tenant_id, membership_id, day) DO NOTHING;"""

CHECK = """
  DELETE FROM leads_repactiveday d
  USING (SELECT DISTINCT tenant_id, membership_id, day FROM ({pairs}) p) gone
  WHERE d.tenant_id = gone.tenant_id AND d.membership_id = gone.membership_id
    AND d.day = gone.day AND NOT leads_rep_day_active(d.tenant_id, d.membership_id, d.day);"""

COMMON = r"""
-- Whether the member acted on the tenant's local day `day`, in any of the four sources
-- (each read through an index that leads with the tenant and the member or user).
CREATE OR REPLACE FUNCTION leads_rep_day_active(tenant bigint, member bigint, day date)
RETURNS boolean LANGUAGE sql STABLE AS $$
  WITH b AS (
    SELECT m.user_id,
           ($3::timestamp AT TIME ZONE t.timezone) AS since,
           (($3 + 1)::timestamp AT TIME ZONE t.timezone) AS until
    FROM crm_membership m JOIN crm_tenant t ON t.id = m.tenant_id
    WHERE m.id = member AND m.tenant_id = tenant
  )
  SELECT EXISTS (
      SELECT 1 FROM b, customers_interaction x
      WHERE x.tenant_id = tenant AND x.by_id = member AND x.at >= b.since AND x.at < b.until)
    OR EXISTS (
      SELECT 1 FROM b, leads_leadevent x
      WHERE x.tenant_id = tenant AND x.actor_id = b.user_id
        AND x.at >= b.since AND x.at < b.until)
    OR EXISTS (
      SELECT 1 FROM leads_dailysummary x
      WHERE x.tenant_id = tenant AND x.membership_id = member AND x.day = $3)
    OR EXISTS (
      SELECT 1 FROM b, crm_auditevent x
      WHERE x.tenant_id = tenant AND x.actor_id = b.user_id
        AND x.at >= b.since AND x.at < b.until)
$$;

-- A tenant's rows, recomputed from the four sources.
CREATE OR REPLACE FUNCTION leads_rep_days_rebuild(tenant bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM leads_repactiveday WHERE tenant_id = tenant;
  INSERT INTO leads_repactiveday (tenant_id, public_id, membership_id, day)
  SELECT tenant_id, gen_random_uuid(), membership_id, day FROM (
    SELECT DISTINCT tenant_id, membership_id, day FROM (
      {interaction}
      UNION ALL {leadevent}
      UNION ALL {summary}
      UNION ALL {audit}
    ) p
  ) d;
END $$;

-- A new seat: the days its user already acted in the tenant; a deleted seat: its rows.
CREATE OR REPLACE FUNCTION leads_rep_days_seat() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM leads_repactiveday WHERE tenant_id = OLD.tenant_id AND membership_id = OLD.id;
    RETURN NULL;
  END IF;
  INSERT INTO leads_repactiveday (tenant_id, public_id, membership_id, day)
  SELECT tenant_id, gen_random_uuid(), membership_id, day FROM (
    SELECT DISTINCT NEW.tenant_id AS tenant_id, NEW.id AS membership_id,
           (x.at AT TIME ZONE t.timezone)::date AS day
    FROM crm_tenant t, (
      SELECT at FROM leads_leadevent WHERE tenant_id = NEW.tenant_id AND actor_id = NEW.user_id
      UNION ALL
      SELECT at FROM crm_auditevent WHERE tenant_id = NEW.tenant_id AND actor_id = NEW.user_id
    ) x
    WHERE t.id = NEW.tenant_id
  ) d ORDER BY day
  ON CONFLICT (tenant_id, membership_id, day) DO NOTHING;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS leads_rep_days_seat ON crm_membership;
CREATE TRIGGER leads_rep_days_seat AFTER INSERT OR DELETE ON crm_membership
  FOR EACH ROW EXECUTE FUNCTION leads_rep_days_seat();
""".format(  # noqa: S608 — constant SQL of this migration
    interaction=SOURCES["customers_interaction"][0].format(rows="customers_interaction")
    + " AND r.tenant_id = tenant",
    leadevent=SOURCES["leads_leadevent"][0].format(rows="leads_leadevent")
    + " WHERE r.tenant_id = tenant",
    summary=SOURCES["leads_dailysummary"][0].format(rows="leads_dailysummary")
    + " WHERE r.tenant_id = tenant",
    audit=SOURCES["crm_auditevent"][0].format(rows="crm_auditevent")
    + " WHERE r.tenant_id = tenant",
)


def _source_sql(table: str, pairs: str, changed: str) -> str:
    name = f"leads_rep_days_{table}"
    return f"""
CREATE OR REPLACE FUNCTION {name}_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN{ADD.format(pairs=pairs.format(rows="changed_rows"))}
  ELSE{CHECK.format(pairs=pairs.format(rows="changed_rows"))}
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {name}_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN{ADD.format(pairs=pairs.format(rows="(SELECT NEW.*)"))}{
        CHECK.format(pairs=pairs.format(rows="(SELECT OLD.*)"))
    }
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS {name}_insert ON {table};
CREATE TRIGGER {name}_insert AFTER INSERT ON {table}
  REFERENCING NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION {name}_rows();
DROP TRIGGER IF EXISTS {name}_delete ON {table};
CREATE TRIGGER {name}_delete AFTER DELETE ON {table}
  REFERENCING OLD TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION {name}_rows();
DROP TRIGGER IF EXISTS {name}_update ON {table};
CREATE TRIGGER {name}_update AFTER UPDATE ON {table}
  FOR EACH ROW WHEN ({changed})
  EXECUTE FUNCTION {name}_row();
"""


TRIGGERS = COMMON + "".join(
    _source_sql(table, pairs, changed) for table, (pairs, changed) in SOURCES.items()
)

UNTRIGGERS = (
    "DROP TRIGGER IF EXISTS leads_rep_days_seat ON crm_membership;\n"
    + "".join(
        f"DROP TRIGGER IF EXISTS leads_rep_days_{table}_{op} ON {table};\n"
        for table in SOURCES
        for op in ("insert", "delete", "update")
    )
    + "".join(
        f"DROP FUNCTION IF EXISTS leads_rep_days_{table}_{kind}();\n"
        for table in SOURCES
        for kind in ("rows", "row")
    )
    + "DROP FUNCTION IF EXISTS leads_rep_days_seat();\n"
    "DROP FUNCTION IF EXISTS leads_rep_days_rebuild(bigint);\n"
    "DROP FUNCTION IF EXISTS leads_rep_day_active(bigint, bigint, date);\n"
)

# Every tenant's rows (the owner lifts the forced row security for this migration).
BACKFILL = "SELECT leads_rep_days_rebuild(id) FROM crm_tenant;"


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            unforce(schema_editor, *TABLES)
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0012_outbox_event"),
        ("customers", "0010_interaction_due_covering"),
        ("leads", "0020_lead_revisits_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="RepActiveDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "public_id",
                    models.UUIDField(default=uuid.uuid4, editable=False, verbose_name="public id"),
                ),
                ("membership_id", models.BigIntegerField(verbose_name="member")),
                ("day", models.DateField(verbose_name="day")),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="crm.tenant",
                        verbose_name="tenant",
                    ),
                ),
            ],
            options={
                "verbose_name": "member's active day",
                "verbose_name_plural": "members' active days",
                "abstract": False,
                "base_manager_name": "unscoped",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("tenant", "public_id"), name="leads_repactiveday_public_id"
                    ),
                    models.UniqueConstraint(
                        fields=("tenant", "membership_id", "day"), name="repactiveday_one_per_day"
                    ),
                ],
            },
            managers=[
                ("objects", django.db.models.manager.Manager()),
                ("unscoped", django.db.models.manager.Manager()),
            ],
        ),
        migrations.RunPython(_run(TRIGGERS), _run(UNTRIGGERS)),
        migrations.RunPython(_run(BACKFILL), migrations.RunPython.noop),
    ]
