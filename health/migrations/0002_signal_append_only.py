from django.db import migrations

# Signals are append-only (health.models.Signal): PostgreSQL refuses an UPDATE of
# health_signal whatever path it takes (a queryset update, the admin, raw SQL). The one
# change let through is Django's SET_NULL when the signal's contact or tracked link is
# deleted: contact_id / link_id becoming NULL with every other column unchanged. Rows
# still go with their customer or tenant (DELETE is not refused).
TRIGGER = r"""
CREATE OR REPLACE FUNCTION health_signal_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.contact_id IS NOT DISTINCT FROM OLD.contact_id OR NEW.contact_id IS NULL)
     AND (NEW.link_id IS NOT DISTINCT FROM OLD.link_id OR NEW.link_id IS NULL)
     AND (to_jsonb(NEW) - 'contact_id' - 'link_id') = (to_jsonb(OLD) - 'contact_id' - 'link_id')
  THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'health_signal is append-only: signal % cannot be changed', OLD.id
    USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER health_signal_append_only
  BEFORE UPDATE ON health_signal
  FOR EACH ROW EXECUTE FUNCTION health_signal_append_only();
"""

DROP = r"""
DROP TRIGGER IF EXISTS health_signal_append_only ON health_signal;
DROP FUNCTION IF EXISTS health_signal_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("health", "0001_initial")]

    operations = [migrations.RunSQL(TRIGGER, DROP)]
