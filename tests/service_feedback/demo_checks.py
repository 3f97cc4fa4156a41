"""What the demo's helpdesk tickets must show (checked on the one seed of
tests/leads/test_demo.py, which runs `seed_demo` once for the whole story):
`assert_service_story(demo)`."""

from __future__ import annotations

from datetime import timedelta

from django.apps import apps
from django.db.models import Count
from django.utils import timezone

from crm.tenancy import tenant_context
from service_feedback import report as reports
from service_feedback.demo import AT_WORK, AWAY, CHANNEL_NAME, CLUSTER, FREE_PHONES
from service_feedback.models import Ticket


def assert_service_story(demo) -> None:
    now = timezone.now()
    with tenant_context(demo):
        channel = apps.get_model("leads", "Channel").objects.get(name=CHANNEL_NAME)
        assert channel.type == "helpdesk"
        tickets = Ticket.objects.filter(channel=channel)
        total = tickets.count()
        assert total >= 150, total
        # Two months of them, with Chinese text about the devices.
        oldest = tickets.order_by("opened_at").first().opened_at
        assert now - oldest >= timedelta(days=55)
        assert set(tickets.values_list("product_line", flat=True)) >= {
            "彩超",
            "CT",
            "内镜",
            "监护仪",
        }
        assert tickets.filter(text__contains="报错代码 E-").count() == total

        # Most matched by a contact's phone or e-mail; a few unmatched, open, waiting.
        matched = tickets.filter(customer__isnull=False)
        assert matched.count() >= total * 0.9
        keys = set(matched.values_list("match_key", flat=True))
        assert {"phone", "email"} <= keys or "phone" in keys, keys
        waiting = tickets.filter(customer__isnull=True)
        assert waiting.filter(phone_key__in=[f"+86{p}" for p in FREE_PHONES]).count() == len(
            FREE_PHONES
        )
        assert not waiting.exclude(status="open").exists()

        # One open quality cluster: ≥ 5 of one model × fault × province in 72 hours.
        _line, model, code, province = CLUSTER
        recent = tickets.filter(opened_at__gte=now - timedelta(hours=72))
        clusters = (
            recent.values("product_model", "fault_code", "province")
            .annotate(n=Count("id"))
            .filter(n__gte=5)
        )
        found = {(c["product_model"], c["fault_code"], c["province"]) for c in clusters}
        assert found == {(model, code, province)}, found

        # Upsell and referral mentions on customers of reps at work, none of rep6's.
        for flag in ("upsell", "referral"):
            flagged = tickets.filter(flags__contains=[flag])
            owners = set(flagged.values_list("customer__owner__user__username", flat=True))
            assert flagged.count() >= 2, flag
            assert owners and owners <= set(AT_WORK), (flag, owners)
            assert AWAY not in owners
        assert tickets.filter(flags__contains=["churn"]).count() >= 2

        # The report has something in every column: repeats and refused times too.
        today = timezone.localdate(timezone=demo.tzinfo)
        report = reports.service_report(today - timedelta(days=61), today, tenant=demo)
        assert report.total.cell("tickets").value == total
        assert report.total.cell("repeats").value >= 3
        assert report.total.cell("duration_issues").value == 2
        assert 0.5 < report.total.cell("in_target_rate").value < 1
        assert report.total.cell("median_resolution").value is not None
        assert len(report.provinces) >= 3 and len(report.product_lines) == 4
