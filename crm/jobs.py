"""Queueing a task by its registered name.

A service that queues a task defined in a module which imports that service back (a
`tasks.py` calls its services; the services queue its tasks) names the task instead of
importing it, so the modules import each other one way only. The name is the task's
`name=` ("leads.process_inbound_event"), the same the beat schedule uses.
"""

from __future__ import annotations

from celery import Task

from crm.celery import app


def task_named(name: str) -> Task:
    """The task registered as `name`, loading the apps' task modules first if needed."""
    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name]
