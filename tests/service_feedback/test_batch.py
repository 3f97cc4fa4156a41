"""Helpdesk tickets written in batches (F27, issue 15): the inbox's batch of helpdesk
events gives exactly the rows and notifications that processing its events one after
another gives, in a number of queries that does not grow with the batch; an event whose
ticket cannot be written fails alone."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Notification
from crm.tenancy import tenant_context
from leads.intake.services import (
    inbound_event_receive,
    inbound_events_next,
    inbound_events_process,
)
from leads.models import ChannelType, EventStatus, InboundEvent
from service_feedback import alerts, intake
from service_feedback.effects import CHURN_EVENT
from service_feedback.models import LinkKey, QualityAlert, Ticket, TicketLink
from service_feedback.services import TicketData, match, match_many, ticket_upsert
from tests.leads.factories import make_channel
from tests.service_feedback.helpers import customer_with_contact

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat()


def cluster(external_id: str, hours_ago: float = 2, **fields) -> dict:
    return {
        "external_id": external_id,
        "subject": "HX-200 报 E17",
        "product_model": "HX-200",
        "fault_code": "E17",
        "province": "江苏",
        "opened_at": at(hours_ago),
        **fields,
    }


# The batch: a new ticket matched by each key, an unmatched one, a re-delivery of a
# ticket stored before, two deliveries of one new ticket (the second flags a churn risk),
# a payload that is no ticket, churn risks matched and unmatched, and a cluster that has 2
# tickets before the batch: the 5th in the window raises the alert, the 6th attaches.
BATCH = [
    {"external_id": "N-1", "customer_code": "C-001", "opened_at": at(5)},
    cluster("Q-3", phone="13800138000"),
    {"external_id": "N-2", "phone": "138 0013 8000", "opened_at": at(5)},
    {"external_id": "N-3", "email": "Wang@HengLi.com", "opened_at": at(5)},
    cluster("Q-old", hours_ago=100),  # out of the 72-hour window: never counts
    {"external_id": "N-4", "email": "li@dongfang.cn", "opened_at": at(5)},
    {"external_id": "N-5", "phone": "13900001111", "opened_at": at(5)},
    {"subject": "no id"},
    cluster("Q-4", email="li@dongfang.cn"),
    {"external_id": "N-6", "phone": "13611112222", "text": "我们要投诉", "opened_at": at(5)},
    {"external_id": "OLD-1", "customer_code": "C-001", "status": "closed", "opened_at": at(30)},
    cluster("Q-5", hours_ago=1),
    {"external_id": "N-7", "customer_code": "C-001", "text": "考虑换供应商", "opened_at": at(4)},
    {"external_id": "N-1", "customer_code": "C-001", "text": "再次投诉", "status": "resolved"},
    cluster("Q-6", hours_ago=0.5, customer_code="C-001"),
    {"external_id": "N-8", "email": "chen@qq.com", "opened_at": at(5)},  # free mail
]


def prepare(side):
    """The same customers, link and earlier tickets in each tenant."""
    channel = make_channel(side.tenant, type=ChannelType.HELPDESK, name="售后工单")
    hengli = customer_with_contact(side, "恒力液压", code="C-001", email="wang@hengli.com")
    dongfang = customer_with_contact(
        side, "东方电气", phone="13700001234", email="zhao@dongfang.cn"
    )
    with tenant_context(side.tenant):
        TicketLink.objects.create(
            tenant=side.tenant,
            key=LinkKey.PHONE,
            value="+8613900001111",
            customer=dongfang,
            linked_by=side.manager,
        )
        for external_id, fields in (
            ("OLD-1", {"phone": "13755556666", "opened_at": NOW - timedelta(hours=30)}),
            ("Q-1", cluster("Q-1", hours_ago=3)),
            ("Q-2", cluster("Q-2", hours_ago=3)),
        ):
            fields = {k: v for k, v in fields.items() if k != "external_id"}
            if isinstance(fields.get("opened_at"), str):
                fields["opened_at"] = NOW - timedelta(hours=3)
            ticket_upsert(
                tenant=side.tenant,
                channel=channel,
                data=TicketData(external_id=external_id, **fields),
            )
    return channel, hengli


def receive(side, channel, payloads) -> list[int]:
    with tenant_context(side.tenant):
        return [
            inbound_event_receive(
                channel=channel,
                raw_body=json.dumps(p, ensure_ascii=False),
                source="webhook",
                payload=p,
                queue=False,
            )[0].pk
            for p in payloads
        ]


def snapshot(side) -> dict:
    """What processing left, without ids and times of writing."""
    with tenant_context(side.tenant):
        names = {}
        for t in Ticket.objects.all():
            names[str(t.public_id)] = t.external_id
        alert_names = {
            a.pk: (a.product_model, a.fault_code, a.province, a.last_ticket_at, a.closed_at)
            for a in QualityAlert.objects.all()
        }
        tickets = sorted(
            (
                t.external_id,
                t.status,
                t.text,
                t.opened_at,
                t.customer.name if t.customer else None,
                t.contact.email if t.contact else None,
                t.match_key,
                t.match_value,
                t.phone_key,
                t.email,
                tuple(t.flags),
                tuple(t.flag_words),
                alert_names.get(t.alert_id),
                t.first_response_minutes,
                t.resolution_minutes,
                t.duration_issue,
                t.event.raw_body if t.event else None,
            )
            for t in Ticket.objects.select_related("customer", "contact", "event")
        )
        notes = sorted(
            (
                n.event,
                n.recipient.role,
                json.dumps(
                    {
                        k: names.get(v, v) if k == "ticket" else v
                        for k, v in n.params.items()
                        if k != "alert"
                    },
                    ensure_ascii=False,
                    sort_keys=True,
                ),
            )
            for n in Notification.objects.select_related("recipient")
        )
        events = sorted(
            (e.raw_body, e.status, e.error) for e in InboundEvent.objects.filter(source="webhook")
        )
    return {
        "tickets": tickets,
        "alerts": sorted(alert_names.values()),
        "notes": notes,
        "events": events,
    }


def test_a_mixed_batch_gives_what_one_by_one_processing_gives(world):
    batched, one_by_one = world.a, world.b
    for side in (batched, one_by_one):
        channel, _ = prepare(side)
        side.extra["events"] = receive(side, channel, BATCH)

    with tenant_context(batched.tenant):
        done = inbound_events_process(event_id=batched.extra["events"][0], limit=50)
    assert len(done) == len(BATCH)  # one batch, one call of the helpdesk handler
    for event_id in one_by_one.extra["events"]:
        with tenant_context(one_by_one.tenant):
            assert len(inbound_events_process(event_id=event_id, limit=1)) == 1

    got, expected = snapshot(batched), snapshot(one_by_one)
    assert got == expected

    # And what that is, stated by hand.
    rows = {t[0]: t for t in got["tickets"]}
    assert {k: (rows[k][4], rows[k][6]) for k in ("N-1", "N-2", "N-3", "N-4", "N-5", "N-6")} == {
        "N-1": ("恒力液压", "code"),
        "N-2": ("恒力液压", "phone"),
        "N-3": ("恒力液压", "email"),
        "N-4": ("东方电气", "domain"),
        "N-5": ("东方电气", "link"),
        "N-6": (None, ""),
    }
    assert rows["N-8"][4] is None and rows["Q-4"][6] == "domain"
    assert rows["OLD-1"][1:2] == ("closed",) and rows["OLD-1"][4:7:2] == ("恒力液压", "code")
    assert rows["N-1"][1:3] == ("resolved", "再次投诉")  # the second delivery, in order
    assert rows["N-1"][10] == ("churn",)
    assert [e[1:] for e in got["events"]].count(
        ("failed", "not a ticket: external_id: The ticket has no id.")
    ) == 1
    assert [e[1] for e in got["events"]].count("processed") == len(BATCH) - 1
    (alert,) = got["alerts"]
    clustered = sorted(k for k, row in rows.items() if row[12] is not None)
    assert clustered == ["Q-1", "Q-2", "Q-3", "Q-4", "Q-5", "Q-6"]  # not Q-old
    assert alert[3] == NOW - timedelta(hours=0.5)  # the last ticket's opening
    raised = [n for n in got["notes"] if n[0] == alerts.ALERT_EVENT]
    assert [r[1] for r in raised] == ["admin", "manager", "rep"]  # rep: the owner of Q-4's
    assert all('"count": 5' in r[2] for r in raised)  # counted at the 5th, as told then
    churn = sorted((r[1], json.loads(r[2])["ticket"]) for r in got["notes"] if r[0] == CHURN_EVENT)
    assert churn == [("manager", "N-1"), ("manager", "N-7"), ("rep", "N-1"), ("rep", "N-7")]


def test_a_churn_ticket_delivered_again_in_a_batch_notifies_once(world):
    channel, _ = prepare(world.a)
    words = {"customer_code": "C-001", "text": "我们要投诉"}
    ids = receive(
        world.a, channel, [{"external_id": "C-9", **words}, {"external_id": "C-9", **words}]
    )
    with tenant_context(world.a.tenant):
        inbound_events_process(event_id=ids[0], limit=50)
        assert Notification.objects.filter(event=CHURN_EVENT).count() == 2  # rep + manager
        assert Ticket.objects.filter(external_id="C-9").count() == 1


def budget_payloads(run: str, count: int) -> list[dict]:
    keys = (
        {"customer_code": "C-001"},
        {"phone": "13800138000"},
        {"email": "wang@hengli.com"},
        {"email": "li@dongfang.cn"},
        {"phone": "13900001111"},
        {"phone": "13611112222"},
    )
    return [
        {
            "external_id": f"{run}-{i}",
            "opened_at": at(2),
            "product_model": "HX-200",
            "fault_code": f"F{i}",  # clusters of one: none raises an alert
            "province": "江苏",
            **keys[i % len(keys)],
        }
        for i in range(count)
    ]


def test_a_batchs_queries_do_not_grow_with_its_size(world):
    channel, _ = prepare(world.a)
    with tenant_context(world.a.tenant):
        # An open alert for one cluster each batch feeds, and a re-delivery in each batch.
        QualityAlert.objects.create(
            tenant=world.a.tenant,
            product_model="HX-200",
            fault_code="E17",
            province="江苏",
            opened_at=NOW,
            last_ticket_at=NOW - timedelta(hours=3),
        )
    counts = {}
    for size in (10, 50):
        payloads = budget_payloads(f"B{size}", size - 2)
        payloads += [
            cluster(f"Q-{size}", hours_ago=1),
            cluster("Q-1", hours_ago=1, text=f"again {size}"),
        ]
        ids = receive(world.a, channel, payloads)
        with tenant_context(world.a.tenant), CaptureQueriesContext(connection) as queries:
            done = inbound_events_process(event_id=ids[0], limit=size)
        assert [e.status for e in done] == [EventStatus.PROCESSED] * size
        counts[size] = len(queries)
    assert counts[10] == counts[50], counts
    print(counts)
    assert counts[50] <= 30, counts
    with tenant_context(world.a.tenant):
        (alert,) = QualityAlert.objects.all()
        assert alert.tickets.count() == 4  # Q-1, Q-2 (attached on the way), Q-10, Q-50
        assert alert.last_ticket_at == NOW - timedelta(hours=1)


def test_the_inbox_tasks_batch_costs_the_same_statements_whatever_its_size(world):
    """The announced task's batch (inbound_events_next: the claim of the tenant's oldest
    received events, the tickets, the events' outcomes): the same statements for 10
    events as for 50, the outcomes in one UPDATE."""
    channel, _ = prepare(world.a)
    counts = {}
    for size in (10, 50):
        ids = receive(world.a, channel, budget_payloads(f"D{size}", size))
        with tenant_context(world.a.tenant), CaptureQueriesContext(connection) as queries:
            done = inbound_events_next(limit=size)
        assert [e.pk for e in done] == ids
        assert {e.status for e in done} == {EventStatus.PROCESSED}
        statements = [q["sql"] for q in queries.captured_queries]
        # The outcomes: one UPDATE … FROM unnest(…), not Django's bulk_update (a CASE per
        # row and column).
        outcomes = [
            s
            for s in statements
            if s.startswith("UPDATE") and "leads_inboundevent" in s.split(" SET ")[0]
        ]
        assert len(outcomes) == 1 and "FROM unnest(" in outcomes[0], outcomes
        counts[size] = len(statements)
    assert counts[10] == counts[50], counts
    assert counts[50] <= 21, counts
    with tenant_context(world.a.tenant):
        rows = InboundEvent.objects.filter(processed_at__isnull=False)
        assert rows.count() == 60
        assert {(e.status, e.attempts, e.error) for e in rows} == {(EventStatus.PROCESSED, 1, "")}


def test_an_event_whose_ticket_cannot_be_written_fails_alone(world):
    channel, _ = prepare(world.a)
    ids = receive(
        world.a,
        channel,
        [{"external_id": "W-1"}, {"external_id": "W-2", "text": "x"}, {"external_id": "W-3"}],
    )
    with tenant_context(world.a.tenant):
        events = list(InboundEvent.objects.filter(pk__in=ids).order_by("pk"))
        events[1].payload = {"external_id": "W-2", "text": "坏\x00字"}  # NUL: no text column
        intake.process_events(events)
        assert [e.status for e in events] == ["processed", "failed", "processed"]
        assert "NUL" in events[1].error
        assert sorted(
            Ticket.objects.filter(external_id__startswith="W-").values_list(
                "external_id", flat=True
            )
        ) == ["W-1", "W-3"]


def test_match_is_match_many_of_one(world):
    customer_with_contact(world.a, "恒力液压", code="C-001", email="wang@hengli.com")
    queries = [
        ("C-001", "", ""),
        ("", "+8613800138000", ""),
        ("", "", "WANG@hengli.com"),
        ("", "", "li@hengli.com"),
        ("", "", "li@qq.com"),
        ("C-404", "+8613611112222", ""),
    ]
    with tenant_context(world.a.tenant):
        many = match_many(queries)
        one = [match(customer_code=c, phone=p, email=e) for c, p, e in queries]
    assert many == one
    assert [m.key for m in many] == ["code", "phone", "email", "domain", "", ""]


@pytest.mark.django_db(transaction=True)
def test_a_batch_and_a_single_write_of_one_ticket_serialise(world):
    """The batch takes `ticket_upsert`'s own lock on each ticket: a single write of the
    same ticket waits for the batch's commit, then updates the ticket it made."""
    import threading
    import time

    from django.db import transaction

    from service_feedback.services import TicketItem, flag_keywords, settings_for, tickets_write

    tenant = world.a.tenant
    channel = make_channel(tenant, type=ChannelType.HELPDESK, name="售后工单")
    with tenant_context(tenant):  # made on first use: made now, nothing else to wait on
        settings_for(tenant), flag_keywords(tenant)
    written, release = threading.Event(), threading.Event()
    errors = []

    def batch():
        try:
            with tenant_context(tenant), transaction.atomic():
                item = TicketItem(channel=channel, data=TicketData("S-1", subject="batch"))
                tickets_write(tenant=tenant, items=[item])
                written.set()
                release.wait(20)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def single():
        try:
            written.wait(20)
            with tenant_context(tenant):
                ticket_upsert(tenant=tenant, channel=channel, data=TicketData("S-1", subject="one"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=batch), threading.Thread(target=single)]
    for t in threads:
        t.start()
    assert written.wait(20)
    time.sleep(0.5)
    assert threads[1].is_alive()  # waiting on the ticket's lock
    release.set()
    for t in threads:
        t.join(30)
    assert errors == []
    with tenant_context(tenant):
        assert list(Ticket.objects.values_list("external_id", "subject")) == [("S-1", "one")]
