"""What automation hands to the kernel's registries, from AutomationConfig.ready(): the
outbox consumer, its notification events, the board's task section, the audit actions."""

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
