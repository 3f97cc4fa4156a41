"""What the hostile-webhook tests share (test_hooks_hostile_input and
test_hooks_hostile_transport): a lead body with a slot for any JSON value, the channel
fixture, and tenant a's stored events."""

from __future__ import annotations

import pytest

from crm.tenancy import tenant_context
from leads.models import InboundEvent
from tests.leads.factories import make_channel

LEAD = '{"company": "宁波恒力液压科技有限公司", "phone": "13957123481", "x": %s}'


@pytest.fixture(name="channel")
def channel_fixture(world):
    return make_channel(world.a.tenant)


def _events(tenant):
    with tenant_context(tenant):
        return list(InboundEvent.objects.order_by("pk"))
