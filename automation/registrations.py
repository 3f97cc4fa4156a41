"""What automation hands to the kernel's registries, from AutomationConfig.ready(): the
outbox consumer, its logs' nightly pruner, its notification events, the board's task
section, the audit actions;
and each new tenant's risk preset switched on (`tenant_created`)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


def register() -> None:
    from automation import actions, board, engine
    from crm.audit import register_actions
    from crm.board import BoardSection, register_section
    from crm.events import register_consumer
    from crm.notify import EventType, register_event
    from crm.roles import ADMINS, BOARD

    register_consumer(engine.consume)
    from automation import log_retention
    from crm.log_retention import LogPruner, register_pruner

    # The nightly retention: the run log, handled clocks, finished webhook calls and spent
    # dedup rows; and the event log kept for the windowed counts and the dry run.
    register_pruner(
        LogPruner("automation", log_retention.prune, event_days=log_retention.event_days)
    )
    from django.db.models.signals import post_save

    from crm.models import Tenant

    post_save.connect(tenant_created, sender=Tenant, dispatch_uid="automation.tenant_created")
    register_event(
        EventType(
            key=actions.FIRED_EVENT,
            label=_("An automation rule tells me"),
            title=_("%(message)s"),
            body=_("Rule %(rule)s, for %(subject)s."),
        )
    )
    register_event(
        EventType(
            key=engine.PAUSED_EVENT,
            label=_("An automation rule was paused"),
            title=_("Automation rule %(rule)s paused"),
            body=_("Its action failed %(failures)s times in a row (last error: %(error)s)."),
            roles=ADMINS,
        )
    )
    register_section(
        BoardSection(
            key="automation_tasks",
            title=_("Tasks from rules"),
            icon="lightning-charge",
            order=40,
            holds=_("Tasks that the tenant's automation rules put on your board."),
            source=_("Filled by automation rules whose action is a task for you."),
            roles=BOARD,
            items=board.open_tasks,
            template="automation/board_tasks.html",
        )
    )
    register_actions(
        {
            "automation.task_done": _("Task from a rule done"),
            "automation.preset_added": _("Automation preset added"),
        }
    )


def tenant_created(sender, instance, created, using, **kwargs) -> None:
    """A new tenant starts with the rule "a customer entered the risk list → retention
    task" on (automation.presets.risk_rule_ensure): in the same transaction, or, for a
    tenant the platform superuser adds (the platform alias), once that commits."""
    if not created or kwargs.get("raw"):
        return
    from functools import partial

    from django.db import DEFAULT_DB_ALIAS, transaction

    if using == DEFAULT_DB_ALIAS:
        _ensure(instance.pk)
    else:
        transaction.on_commit(partial(_ensure, instance.pk), using=using)


def _ensure(tenant_id: int) -> None:
    from automation.presets import risk_rule_ensure
    from crm.models import Tenant
    from crm.tenancy import tenant_context

    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_context(tenant):
        risk_rule_ensure(tenant)
