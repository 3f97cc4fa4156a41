"""The one page action of automation: a rule's task marked done from the board."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from automation.access import access_task
from automation.services import task_done


@require_POST
def task_done_view(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    task = access_task(request.membership, public_id)
    task_done(tenant=request.tenant, acting_member=request.membership, task=task)
    if request.htmx:
        return HttpResponse("")
    return redirect("board:board")
