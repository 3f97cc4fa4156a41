"""A rule's task on the board: listed for its assignee, marked done by them only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from automation.models import Task
from crm.tenancy import tenant_context

pytestmark = pytest.mark.django_db


def task(side, member, title="回访客户"):
    with tenant_context(side.tenant):
        return Task.objects.create(
            tenant=side.tenant, assignee=member, title=title, subject="customer:1"
        )


def test_the_board_lists_the_members_open_tasks_and_marks_one_done(world, en):
    mine = task(world.a, world.a.rep)
    task(world.a, world.a.manager, title="别人的任务")
    client = en(world.a.rep)
    page = client.get(reverse("board:board")).content.decode()
    assert "回访客户" in page and "别人的任务" not in page
    response = client.post(reverse("automation:task_done", args=[mine.public_id]))
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        mine.refresh_from_db()
    assert mine.done_at is not None
    assert "回访客户" not in client.get(reverse("board:board")).content.decode()


def test_another_members_or_tenants_task_is_404(world, en):
    colleague = task(world.a, world.a.manager)
    foreign = task(world.b, world.b.rep)
    client = en(world.a.rep)
    for t in (colleague, foreign):
        url = reverse("automation:task_done", args=[t.public_id])
        assert client.post(url).status_code == 404
    with tenant_context(world.a.tenant):
        colleague.refresh_from_db()
    assert colleague.done_at is None
