"""Queues by job class (crm/settings.py, docs/scaling.md): every task goes to the queue of
its class, and a worker started without -Q consumes every queue."""

from __future__ import annotations

import pytest

from crm.celery import app

EXPECTED = {
    "leads.process_inbound_events": "intake",
    "leads.process_inbound_event": "intake",
    "leads.redrive_inbound_events": "intake",
    "leads.verify_lead_company": "intake",
    "leads.sla_sweep_all": "intake",
    "leads.sla_sweep": "intake",
    "crm.deliver": "notifications",
    "crm.deliver_due": "notifications",
    "crm.run_export": "reports",
    "crm.exports_cleanup_all": "reports",
    "crm.weekly_diagnosis": "reports",
    "crm.check_metrics_all": "reports",
    "crm.levels_record": "reports",
    "leads.run_replay": "reports",
    "leads.report_rollup": "reports",
    "leads.activity_nightly_all": "reports",
    "opportunities.pipeline_nightly": "reports",
    "health.recompute_all": "reports",
    "health.recompute": "reports",
    "crm.log_retention_all": "reports",
    "crm.log_retention": "reports",
    "crm.events_process": "automation",
    "crm.events_redrive": "automation",
    "automation.due_sweep_all": "automation",
    "automation.due_sweep": "automation",
    "crm.heartbeat": "celery",
    "service_feedback.alerts_sweep": "celery",
}


def _queue(name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


@pytest.mark.parametrize(("task", "queue"), sorted(EXPECTED.items()))
def test_each_task_goes_to_its_class_queue(task, queue):
    app.loader.import_default_modules()
    assert task in app.tasks, task
    assert _queue(task) == queue


def test_every_registered_task_has_a_known_queue_and_workers_take_them_all():
    app.loader.import_default_modules()
    known = {q.name for q in app.amqp.queues.values()}
    assert known == {"intake", "notifications", "reports", "automation", "celery"}
    ours = [name for name in app.tasks if not name.startswith("celery.")]
    assert ours
    assert {name: _queue(name) for name in ours if _queue(name) not in known} == {}
    # A worker without -Q (make run, the tests, one-box installs) consumes every queue.
    assert set(app.amqp.queues.consume_from or app.amqp.queues) == known
