from django.db import migrations

# The history (opportunities.models.OpportunityEvent) and the evidence that follow-ups
# bring, kept by triggers so that no path can skip them: the services, the admin, a
# queryset update, an import, raw SQL. The actor and the path come from the
# transaction-local settings app.actor_id and app.path (opportunities.services._mark);
# without them the entry says "sql" and no actor. A stage entry is dated by
# stage_entered_at, a close by won_at / lost_at, the creation by created_at (so history
# loaded with its dates keeps them); the others by the transaction's time.
TRIGGERS = r"""
CREATE OR REPLACE FUNCTION opportunities_actor() RETURNS bigint
LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('app.actor_id', true), '')::bigint $$;

CREATE OR REPLACE FUNCTION opportunities_path() RETURNS text
LANGUAGE sql STABLE AS
$$ SELECT COALESCE(NULLIF(current_setting('app.path', true), ''), 'sql') $$;

CREATE OR REPLACE FUNCTION opportunities_history() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  actor bigint := opportunities_actor();
  way text := opportunities_path();
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO opportunities_opportunityevent
      (tenant_id, public_id, opportunity_id, kind, at, actor_id, path, to_stage_id, to_status,
       amount_after, probability, detail)
    VALUES (NEW.tenant_id, gen_random_uuid(), NEW.id, 'created', NEW.created_at, actor, way,
       NEW.stage_id, NEW.status, NEW.amount, NEW.probability, '{}');
    RETURN NULL;
  END IF;
  IF NEW.stage_id IS DISTINCT FROM OLD.stage_id THEN
    INSERT INTO opportunities_opportunityevent
      (tenant_id, public_id, opportunity_id, kind, at, actor_id, path, from_stage_id,
       to_stage_id, from_status, to_status, probability, detail)
    VALUES (NEW.tenant_id, gen_random_uuid(), NEW.id, 'stage',
       COALESCE(NEW.stage_entered_at, now()), actor, way, OLD.stage_id, NEW.stage_id,
       OLD.status, NEW.status, NEW.probability, '{}');
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    INSERT INTO opportunities_opportunityevent
      (tenant_id, public_id, opportunity_id, kind, at, actor_id, path, from_stage_id,
       to_stage_id, from_status, to_status, amount_after, probability, detail)
    VALUES (NEW.tenant_id, gen_random_uuid(), NEW.id, 'status',
       COALESCE(CASE NEW.status WHEN 'won' THEN NEW.won_at WHEN 'lost' THEN NEW.lost_at END, now()),
       actor, way, OLD.stage_id, NEW.stage_id, OLD.status, NEW.status, NEW.amount,
       NEW.probability, '{}');
  END IF;
  IF NEW.amount IS DISTINCT FROM OLD.amount THEN
    INSERT INTO opportunities_opportunityevent
      (tenant_id, public_id, opportunity_id, kind, at, actor_id, path, to_stage_id,
       amount_before, amount_after, detail)
    VALUES (NEW.tenant_id, gen_random_uuid(), NEW.id, 'amount', now(), actor, way,
       NEW.stage_id, OLD.amount, NEW.amount, '{}');
  END IF;
  IF NEW.is_valid IS DISTINCT FROM OLD.is_valid THEN
    INSERT INTO opportunities_opportunityevent
      (tenant_id, public_id, opportunity_id, kind, at, actor_id, path, to_stage_id, detail)
    VALUES (NEW.tenant_id, gen_random_uuid(), NEW.id, 'validity', now(), actor, way,
       NEW.stage_id, jsonb_build_object('valid', NEW.is_valid));
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS opportunities_history_insert ON opportunities_opportunity;
CREATE TRIGGER opportunities_history_insert AFTER INSERT ON opportunities_opportunity
  FOR EACH ROW EXECUTE FUNCTION opportunities_history();
DROP TRIGGER IF EXISTS opportunities_history_update ON opportunities_opportunity;
CREATE TRIGGER opportunities_history_update AFTER UPDATE ON opportunities_opportunity
  FOR EACH ROW WHEN (
    OLD.stage_id IS DISTINCT FROM NEW.stage_id
    OR OLD.status IS DISTINCT FROM NEW.status
    OR OLD.amount IS DISTINCT FROM NEW.amount
    OR OLD.is_valid IS DISTINCT FROM NEW.is_valid
  ) EXECUTE FUNCTION opportunities_history();

CREATE OR REPLACE FUNCTION opportunities_approval_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO opportunities_opportunityevent
      (tenant_id, public_id, opportunity_id, kind, at, actor_id, path, detail)
    VALUES (NEW.tenant_id, gen_random_uuid(), NEW.opportunity_id, 'requested',
       NEW.requested_at, NEW.requested_by_id, opportunities_path(), '{}');
  ELSIF NEW.decided_at IS NOT NULL AND OLD.decided_at IS NULL THEN
    INSERT INTO opportunities_opportunityevent
      (tenant_id, public_id, opportunity_id, kind, at, actor_id, path, detail)
    VALUES (NEW.tenant_id, gen_random_uuid(), NEW.opportunity_id, 'decided',
       NEW.decided_at, NEW.decided_by_id, opportunities_path(),
       jsonb_build_object('approved', NEW.approved, 'note', NEW.note,
         'hours', round(extract(epoch FROM NEW.decided_at - NEW.requested_at) / 3600.0, 1)));
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS opportunities_approval_history ON opportunities_validityrequest;
CREATE TRIGGER opportunities_approval_history AFTER INSERT OR UPDATE ON opportunities_validityrequest
  FOR EACH ROW EXECUTE FUNCTION opportunities_approval_history();

-- A follow-up on a customer (or on a lead of the customer) is activity on the customer's
-- open opportunities; a visit or meeting is the validity funnel's first check (it counts
-- from 90 days before the opportunity opened); the decision-chain members it reached
-- (their role among the follow-up's roles, or the contact it was with) are reached, and
-- engaged from the second touch or an agreement on.
CREATE OR REPLACE FUNCTION opportunities_follow_up() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  cust bigint := NEW.customer_id;
BEGIN
  IF cust IS NULL AND NEW.lead_id IS NOT NULL THEN
    SELECT customer_id INTO cust FROM leads_lead WHERE id = NEW.lead_id;
  END IF;
  IF cust IS NULL THEN
    RETURN NULL;
  END IF;
  UPDATE opportunities_opportunity o
     SET last_activity_at = GREATEST(o.last_activity_at, NEW.at),
         visit_at = CASE
           WHEN o.visit_at IS NULL AND NEW.channel IN ('visit', 'meeting')
                AND NEW.at >= o.created_at - interval '90 days' THEN NEW.at
           ELSE o.visit_at END
   WHERE o.tenant_id = NEW.tenant_id AND o.customer_id = cust AND o.status = 'open';
  UPDATE opportunities_opportunitycontact oc
     SET contact_status = CASE
           WHEN oc.contact_status = 'not_yet' AND NOT NEW.closes_loop THEN 'reached'
           ELSE 'engaged' END,
         last_contacted_at = GREATEST(oc.last_contacted_at, NEW.at)
    FROM opportunities_opportunity o, opportunities_chainrole r
   WHERE oc.opportunity_id = o.id AND oc.role_id = r.id
     AND o.tenant_id = NEW.tenant_id AND o.customer_id = cust AND o.status = 'open'
     AND (oc.contact_id = NEW.contact_id
          OR r.decision_role IN (SELECT jsonb_array_elements_text(
               CASE jsonb_typeof(NEW.roles) WHEN 'array' THEN NEW.roles ELSE '[]' END)));
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS opportunities_follow_up ON customers_interaction;
CREATE TRIGGER opportunities_follow_up AFTER INSERT ON customers_interaction
  FOR EACH ROW EXECUTE FUNCTION opportunities_follow_up();
"""

DROP = r"""
DROP TRIGGER IF EXISTS opportunities_follow_up ON customers_interaction;
DROP FUNCTION IF EXISTS opportunities_follow_up();
DROP TRIGGER IF EXISTS opportunities_approval_history ON opportunities_validityrequest;
DROP FUNCTION IF EXISTS opportunities_approval_history();
DROP TRIGGER IF EXISTS opportunities_history_update ON opportunities_opportunity;
DROP TRIGGER IF EXISTS opportunities_history_insert ON opportunities_opportunity;
DROP FUNCTION IF EXISTS opportunities_history();
DROP FUNCTION IF EXISTS opportunities_path();
DROP FUNCTION IF EXISTS opportunities_actor();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("opportunities", "0001_initial"),
        ("customers", "0004_search_grams"),
        ("leads", "0014_suspect_index"),
    ]

    operations = [migrations.RunSQL(TRIGGERS, DROP)]
