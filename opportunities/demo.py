"""The demo tenant's opportunities (`manage.py seed_demo`, after the leads' story).

Two parts:
- **A year of closed history** on customers of earlier years: about 260 opportunities
  that went through some stages and were won or lost over the last 12 months, loaded
  with their dates (the history triggers date each stage entry by `stage_entered_at`,
  path "system"), so that the nightly calibration has 20+ cases per stage and the
  forecast page has a year of frozen forecasts against what was signed. Each came from
  a lead verified when its cycle started, and each month has leads that never became
  one (`opportunities/demo_cohorts.py`): the lead-to-contract cycle's cohorts.
- **Today's pipeline** on the customers of the last two weeks' verified leads, built
  through the services with real evidence (files, follow-ups, decision chains,
  questions, approvals): opportunities at every stage, some valid, some waiting for an
  approval, some blocked by one named missing action, a few won with their signed
  contract and a few lost with specific reasons.

Then last night's lead activity index is computed once, so the reps' boards list their
leads to rescue. Idempotent: nothing is added when the tenant has opportunities already.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from crm.normalize import company_key
from customers.models import (
    Contact,
    Customer,
    CustomerLevel,
    DecisionRole,
    Interaction,
    InteractionKind,
    PresetKind,
)
from customers.services import presets
from leads.activity import compute as activity
from leads.demo.story import AWAY
from leads.models import Lead
from opportunities import calibration, forecast, services
from opportunities.demo_cohorts import OriginLeads
from opportunities.forecast import add_months
from opportunities.models import (
    AttachmentKind,
    Attitude,
    BudgetBand,
    ChainRole,
    ContactStatus,
    ForecastMonth,
    Influence,
    LostReason,
    Opportunity,
    OpportunityStatus,
    Path,
    Stage,
    StageRequirement,
    TechnicalQuestion,
)
from opportunities.setup import ensure_defaults

SEED = 20261202
QUESTIONS = [
    "能否与现有 PACS 系统对接?",
    "设备功率对机房配电有什么要求?",
    "软件是否支持国产化操作系统?",
]
HISTORY = 260
PRODUCTS = ("彩色多普勒超声", "64排CT", "电子内镜", "监护仪", "DR 数字化X光机", "麻醉机")
HISTORY_CUSTOMERS = (
    "苏州协和医院", "杭州仁济医院", "无锡第二人民医院", "宁波康华体检中心", "南京鼓楼医疗集团",
    "常州中医院", "嘉兴妇幼保健院", "绍兴市立医院", "南通瑞康医疗器械有限公司", "合肥安泰医院",
    "扬州江都人民医院", "湖州安吉中医院", "温州华康医疗设备有限公司", "镇江康复医院",
    "台州恩泽医疗中心", "泰州人民医院", "金华义乌妇产医院", "徐州矿务集团总医院",
)  # fmt: skip
# Of the opportunities that reach each stage, how many go further (the last: are won).
GO_ON = (0.62, 0.66, 0.7, 0.74, 0.78)


def _pdf(title: str) -> SimpleUploadedFile:
    body = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
    return SimpleUploadedFile(f"{title}.pdf", body, content_type="application/pdf")


def seed(*, world, stdout) -> None:
    tenant = world.demo
    ensure_defaults(tenant)
    if Opportunity.objects.exists():
        stdout.write("opportunities: demo opportunities already there, none added")
        return
    story = _Story(world)
    history = story.history()
    today = story.pipeline()
    months = story.forecasts()
    # The night's work done once: probabilities learnt from the year of history.
    calibration.recalibrate(tenant)
    forecast.freeze(tenant, timezone.localdate().replace(day=1))
    # Last night's lead activity index (F41): the reps' boards list the leads to rescue.
    scored = activity.compute(tenant)
    stdout.write(
        f"opportunities: {history} closed over 12 months from {story.origin_leads} older "
        f"leads, {today} in today's pipeline, {months} months of frozen forecasts; "
        f"activity index: {scored.leads} open leads, {scored.below} below 75"
    )


class _Story:
    def __init__(self, world):
        self.world = world
        self.tenant = world.demo
        self.rnd = random.Random(SEED)  # noqa: S311 — demo data, not secrets
        self.answers = random.Random(SEED + 1)  # noqa: S311 — the objections' answers
        self.reps = [world.memberships[f"rep{i}"] for i in range(1, 7)]
        self.manager = world.memberships["manager"]
        self.stages = list(Stage.objects.filter(is_active=True).order_by("position", "id"))
        self.reasons = list(LostReason.objects.filter(is_active=True))
        self.now = timezone.now()
        self.action = presets(PresetKind.ACTION).first()
        self.amounts: dict[int, Decimal] = {}  # the amount each one is negotiated at
        self.history_customers: list[Customer] = []

    # -- a year of closed history ------------------------------------------------------

    def history(self) -> int:
        customers = []
        for i, name in enumerate(HISTORY_CUSTOMERS):
            customer = Customer.objects.create(
                tenant=self.tenant,
                name=name,
                name_key=company_key(name),
                level=self.rnd.choice(CustomerLevel.values),
                owner=self.rnd.choice(self.reps),
                created_at=self.now - timedelta(days=400 + i),
            )
            Contact.objects.create(
                tenant=self.tenant,
                customer=customer,
                name=self.rnd.choice("王李张刘陈杨赵黄周吴") + "主任",
                title="设备科主任",
                role=DecisionRole.USER,
                created_at=customer.created_at,
            )
            customers.append(customer)
        self.history_customers = customers
        self.origins = OriginLeads(self.tenant, self.action, self.now)
        made = 0
        with services._acting(None, Path.SYSTEM):
            for _ in range(HISTORY):
                made += self._closed(self.rnd.choice(customers))
        # The leads of those months that never became an opportunity.
        self.origins.months(customers, self.reps)
        self.origin_leads = self.origins.flush()
        return made

    def _closed(self, customer: Customer) -> int:
        rnd = self.rnd
        created = self.now - timedelta(days=rnd.randint(40, 350), hours=rnd.randint(0, 23))
        reached = 0
        while reached < len(self.stages) - 1 and rnd.random() < GO_ON[reached]:
            reached += 1
        won = reached == len(self.stages) - 1 and rnd.random() < GO_ON[-1]
        at = created
        moves = []
        for stage in self.stages[1 : reached + 1]:
            at += timedelta(days=rnd.randint(6, 24), hours=rnd.randint(0, 8))
            moves.append((stage, at))
        closed = at + timedelta(days=rnd.randint(4, 18))
        if closed >= self.now - timedelta(days=1):
            return 0
        amount = Decimal(rnd.randrange(80, 3000) * 1000)
        product = rnd.choice(PRODUCTS)
        # It came from a lead of the customer's, verified when its cycle started.
        screened = created - timedelta(days=rnd.randint(3, 20))
        lead = self.origins.valid(customer, screened)
        opportunity = Opportunity.objects.create(
            tenant=self.tenant,
            name=f"{customer.name} · {product}",
            customer=customer,
            owner=customer.owner,
            product_line=product,
            amount=amount,
            budget_band=_band(amount),
            expected_close=closed.date().replace(day=1),
            stage=self.stages[0],
            probability=self.stages[0].default_probability,
            created_at=created,
            stage_entered_at=created,
            last_activity_at=created,
            origin_lead=lead,
            cycle_started_at=screened,
        )
        rows = Opportunity.objects.filter(pk=opportunity.pk)
        for stage, entered in moves:
            rows.update(
                stage=stage,
                stage_entered_at=entered,
                probability=stage.default_probability,
                last_activity_at=entered,
            )
        if won:
            rows.update(
                status=OpportunityStatus.WON,
                won_at=closed,
                probability=100,
                last_activity_at=closed,
                lead_to_contract_days=(closed - opportunity.cycle_started_at).days,
            )
        else:
            reason = rnd.choice(self.reasons)
            rows.update(
                status=OpportunityStatus.LOST,
                lost_at=closed,
                lost_reason=reason,
                lost_detail=rnd.choice(["西门子", "GE 医疗", "迈瑞"])
                if reason.needs_detail
                else "",
                probability=0,
                last_activity_at=closed,
            )
        if moves:
            self._past_objection(opportunity, moves[0][1], closed)
        return 1

    def _past_objection(self, opportunity, entered: datetime, closed: datetime) -> None:
        """A technical question raised the day the opportunity left its first stage,
        answered within five days for about seven in ten (never after it closed): the
        objections of the process report's past periods (crm.process)."""
        raised = entered + timedelta(hours=self.answers.randint(2, 30))
        answered = raised + timedelta(hours=self.answers.randint(6, 120))
        TechnicalQuestion.objects.create(
            tenant=self.tenant,
            opportunity=opportunity,
            text=self.answers.choice(QUESTIONS),
            opened_by=opportunity.owner,
            opened_at=raised,
            closed_at=answered if self.answers.random() < 0.7 and answered < closed else None,
        )

    # -- today's pipeline --------------------------------------------------------------

    def pipeline(self) -> int:
        """Opportunities on the customers of verified leads, through the services."""
        leads = list(
            Lead.objects.filter(
                customer__isnull=False, verified_at__isnull=False, owner__isnull=False
            )
            .select_related("customer", "owner", "contact")
            .order_by("verified_at", "id")
        )
        # The reps at work (the one on leave logged nothing these last days).
        present = {m.pk for m in self.reps if m.pk != self.world.memberships[AWAY].pk}
        # Not the customers of today's revisits (leads.demo.board): an opportunity's
        # follow-ups logged after the revisit came would plan it, and take it off the
        # owner's board, where the story has it waiting.
        revisited = set(
            Lead.objects.filter(
                revisit_of__isnull=False, created_at__gte=self.now - timedelta(hours=8)
            ).values_list("customer_id", flat=True)
        )
        seen, picked = set(revisited), []
        for lead in leads:
            if lead.customer_id not in seen and lead.owner_id in present:
                seen.add(lead.customer_id)
                picked.append(lead)
        # Where each one stands: the stage index, and what it shows.
        plan = (
            [(0, "")] * 8
            + [(0, "blocked")] * 2
            + [(1, "")] * 5
            + [(1, "valid")] * 3
            + [(1, "blocked")] * 2
            + [(2, "valid")] * 3
            + [(2, "pending")] * 2
            + [(2, "blocked")] * 1
            + [(3, "valid")] * 3
            + [(3, "")] * 2
            + [(4, "valid")] * 2
            + [(4, "won")] * 3
            + [(4, "won_last_month")] * 2
            + [(1, "lost")] * 2
            + [(3, "lost")] * 2
        )
        made = 0
        for lead, (index, shows) in zip(picked, plan, strict=False):
            opened = max(lead.verified_at + timedelta(hours=2), self.now - timedelta(days=12))
            self._open(lead.customer, lead.owner, lead, opened, index, shows)
            made += 1
        # Older customers with opportunities gone quiet: the owners' boards list them.
        for customer, index in zip(self.history_customers[:3], (0, 1, 1), strict=True):
            opened = self.now - timedelta(days=self.rnd.randint(34, 45))
            self._open(customer, customer.owner, None, opened, index, "stalled")
            made += 1
        return made

    def _open(self, customer, owner, lead, opened: datetime, index: int, shows: str) -> None:
        rnd = self.rnd
        product = rnd.choice(PRODUCTS)
        amount = Decimal(rnd.randrange(120, 2600) * 1000)
        close_in = rnd.randint(0, 4) if index >= 2 else rnd.randint(1, 6)
        expected = add_months(timezone.localdate().replace(day=1), close_in)
        opportunity = services.opportunity_create(
            tenant=self.tenant,
            acting_member=owner,
            customer=customer,
            origin_lead=lead,
            owner=owner,
            product_line=product,
            # Most start with the rep's first estimate; the rest get theirs in negotiation.
            amount=amount if rnd.random() < 0.75 else None,
            expected_close=expected,
            now=opened,
        )
        self.amounts[opportunity.pk] = amount
        at = opened
        for stage in self.stages[:index]:
            at = self._evidence(opportunity, stage, at)
        for stage in self.stages[1 : index + 1]:
            opportunity = services.opportunity_advance(
                tenant=self.tenant, acting_member=owner, opportunity=opportunity, stage=stage
            )
        current = self.stages[index]
        if shows == "blocked":
            # Everything of the current stage but one action: the kanban names it.
            at = self._evidence(opportunity, current, at, leave_one=True)
        if shows in ("valid", "pending", "won", "won_last_month"):
            at = self._valid(opportunity, at, approve=shows != "pending")
        if shows in ("won", "won_last_month"):
            self._evidence(opportunity, current, at)
            when = self.now - timedelta(days=rnd.randint(1, 5))
            if shows == "won_last_month":
                when = timezone.make_aware(
                    datetime.combine(
                        add_months(timezone.localdate().replace(day=1), -1), datetime.min.time()
                    )
                ) + timedelta(days=rnd.randint(5, 25))
            opportunity.refresh_from_db()
            services.opportunity_win(
                tenant=self.tenant, acting_member=owner, opportunity=opportunity, now=when
            )
        if shows == "lost":
            chain = list(opportunity.chain.all())
            reason = rnd.choice(self.reasons)
            services.opportunity_lose(
                tenant=self.tenant,
                acting_member=owner,
                opportunity=opportunity,
                reason=reason,
                detail="西门子" if reason.needs_detail else "",
                blocker=chain[0] if chain else None,
            )
        # Days in the stage as the story has it (moves were made just now); a stalled one
        # has had nothing since its evidence, weeks ago.
        quiet = min(at, self.now)
        Opportunity.objects.filter(pk=opportunity.pk, status=OpportunityStatus.OPEN).update(
            stage_entered_at=quiet, last_activity_at=quiet
        )

    def _follow_up(self, opportunity, at, *, channel="phone", tags=(), roles=(), contact=None):
        """A done follow-up on the customer at `at` (written as the leads' demo writes its
        backdated ones: the board's open actions are the leads' story's)."""
        Interaction.objects.create(
            tenant=self.tenant,
            kind=InteractionKind.FOLLOW_UP,
            customer=opportunity.customer,
            contact=contact,
            by=opportunity.owner,
            at=at,
            channel=channel,
            talk_tags=list(tags),
            roles=list(roles),
            note="商机跟进:" + "、".join(tags) if tags else "商机跟进",
            next_action=self.action,
            next_action_due=at.date() + timedelta(days=3),
            next_done_at=at + timedelta(days=1),
        )

    def _evidence(self, opportunity, stage: Stage, at: datetime, *, leave_one=False) -> datetime:
        """Do `stage`'s required actions (all, or all but the last one)."""
        requirements = list(
            StageRequirement.objects.filter(stage=stage)
            .select_related("attachment_kind")
            .order_by("position", "id")
        )
        if leave_one:
            requirements = requirements[:-1]
        owner = opportunity.owner
        for requirement in requirements:
            at = min(at + timedelta(hours=self.rnd.randint(5, 30)), self.now)
            kind = requirement.kind
            if kind == "attachment":
                attachment_kind = requirement.attachment_kind
                exists = opportunity.attachments.filter(kind=attachment_kind).exists()
                if not exists:
                    services.attachment_add(
                        tenant=self.tenant,
                        acting_member=owner,
                        opportunity=opportunity,
                        kind=attachment_kind,
                        upload=_pdf(f"{attachment_kind.name}-{opportunity.customer.name}"),
                        effective=attachment_kind.is_contract,
                    )
            elif kind == "follow_ups":
                for _ in range(requirement.count or 1):
                    tags = [requirement.talk_tag] if requirement.talk_tag else ["技术疑虑"]
                    self._follow_up(opportunity, at, tags=tags)
            elif kind == "question":
                if not opportunity.questions.exists():
                    question = services.question_mark(
                        tenant=self.tenant,
                        acting_member=owner,
                        opportunity=opportunity,
                        text=self.rnd.choice(QUESTIONS),
                    )
                    self._objection(question, at)
            elif kind == "decision_chain":
                self._member(opportunity, requirement, at)
            elif kind == "field":
                amount = self.amounts.get(opportunity.pk, Decimal("500000"))
                changes = {
                    "amount": amount,
                    "budget_band": _band(amount),
                    "expected_close": opportunity.expected_close or timezone.localdate(),
                    "product_line": opportunity.product_line or PRODUCTS[0],
                }
                if requirement.field in changes:
                    opportunity.refresh_from_db()
                    services.opportunity_update(
                        tenant=self.tenant,
                        acting_member=owner,
                        opportunity=opportunity,
                        changes={requirement.field: changes[requirement.field]},
                    )
        opportunity.refresh_from_db()
        return at

    def _objection(self, question, at: datetime) -> None:
        """The question as raised with the stage's evidence (at `at`), and answered half a
        day to two and a half days later for about two in three of them: the process
        report's objection closure (crm.process). Its own draws, so the story's other
        draws stay as they were."""
        answered = at + timedelta(hours=self.answers.randint(12, 60))
        closed = answered if self.answers.random() < 0.65 and answered < self.now else None
        TechnicalQuestion.objects.filter(pk=question.pk).update(opened_at=at, closed_at=closed)

    def _member(self, opportunity, requirement, at) -> None:
        roles = ChainRole.objects.filter(is_active=True)
        if requirement.decision_role:
            roles = roles.filter(decision_role=requirement.decision_role)
        role = roles.order_by("position").first()
        attitude = requirement.attitude or self.rnd.choice(
            [Attitude.SUPPORT, Attitude.NEUTRAL, Attitude.UNKNOWN]
        )
        found = opportunity.chain.filter(role=role).first()
        if found is not None:
            if requirement.attitude and found.attitude != requirement.attitude:
                services.chain_member_update(
                    tenant=self.tenant,
                    acting_member=opportunity.owner,
                    member=found,
                    changes={"attitude": requirement.attitude},
                )
            return
        member = services.chain_member_add(
            tenant=self.tenant,
            acting_member=opportunity.owner,
            opportunity=opportunity,
            role=role,
            contact_name=self.rnd.choice("王李张刘陈杨赵黄周吴")
            + self.rnd.choice(["主任", "处长", "工", "总"]),
            contact_title=role.name,
            influence=Influence.HIGH
            if role.decision_role == "decision_maker"
            else self.rnd.choice(Influence.values),
            attitude=attitude,
            contact_status=ContactStatus.NOT_YET,
            key_demands=self.rnd.choice(
                ["三年质保", "本地化培训", "分期付款", "与现有系统兼容", ""]
            ),
        )
        self._follow_up(opportunity, at, roles=[role.decision_role], contact=member.contact)

    def _valid(self, opportunity, at, *, approve: bool) -> datetime:
        """The four validity checks: a visit, a budget band, a requirement document and
        (unless `approve` is False: the request waits) the manager's approval."""
        at = min(at + timedelta(hours=6), self.now)
        self._follow_up(opportunity, at, channel="visit", tags=["已达成共识"])
        opportunity.refresh_from_db()
        if opportunity.budget_band == BudgetBand.PENDING:
            services.opportunity_update(
                tenant=self.tenant,
                acting_member=opportunity.owner,
                opportunity=opportunity,
                changes={"budget_band": BudgetBand.TO_1M},
            )
        kind = AttachmentKind.objects.get(code="requirement")
        if not opportunity.attachments.filter(kind=kind).exists():
            services.attachment_add(
                tenant=self.tenant,
                acting_member=opportunity.owner,
                opportunity=opportunity,
                kind=kind,
                upload=_pdf(f"需求文档-{opportunity.customer.name}"),
            )
        opportunity.refresh_from_db()
        request = services.validity_request(
            tenant=self.tenant, acting_member=opportunity.owner, opportunity=opportunity
        )
        if approve:
            services.validity_decide(
                tenant=self.tenant,
                acting_member=self.manager,
                request=request,
                approve=True,
                note="预算和需求都已落实",
            )
        opportunity.refresh_from_db()
        return at

    # -- a year of frozen forecasts ----------------------------------------------------

    def forecasts(self) -> int:
        """The forecasts as they were frozen on each of the last 12 months' first day (the
        team's and each rep's), and what was signed against them: the accuracy history
        the forecast page shows. Each month's forecast is what was signed give or take
        the rep's usual error."""
        tz = self.tenant.tzinfo
        this_month = timezone.localdate().replace(day=1)
        won = list(
            Opportunity.objects.filter(status=OpportunityStatus.WON).values_list(
                "owner_id", "won_at", "amount"
            )
        )
        rows = []
        for back in range(1, 13):
            month = add_months(this_month, -back)
            signed: dict = {}
            for owner_id, won_at, amount in won:
                local = timezone.localtime(won_at, tz).date()
                if local.replace(day=1) == month:
                    signed[owner_id] = signed.get(owner_id, Decimal(0)) + (amount or 0)
            team_forecast, team_count = Decimal(0), 0
            for rep in self.reps:
                got = signed.get(rep.pk, Decimal(0))
                error = Decimal(str(self.rnd.uniform(-0.35, 0.3)))
                forecast = (
                    (got * (1 + error)).quantize(Decimal("0.01"))
                    if got
                    else Decimal(self.rnd.randrange(0, 300) * 1000)
                )
                counted = self.rnd.randint(1, 6) if forecast else 0
                team_forecast += forecast
                team_count += counted
                rows.append(_frozen(self.tenant, month, rep, forecast, got, counted))
            team_signed = sum(signed.values(), Decimal(0))
            rows.append(_frozen(self.tenant, month, None, team_forecast, team_signed, team_count))
        ForecastMonth.objects.bulk_create(rows)
        return 12


def _frozen(
    tenant, month: date, owner, forecast: Decimal, signed: Decimal, counted: int
) -> ForecastMonth:
    accuracy = None
    if signed:
        accuracy = (1 - abs(forecast - signed) / signed).quantize(Decimal("0.0001"))
    start = timezone.make_aware(datetime.combine(month, datetime.min.time()), tenant.tzinfo)
    return ForecastMonth(
        tenant=tenant,
        month=month,
        owner=owner,
        forecast=forecast,
        valid_forecast=(forecast * Decimal("0.7")).quantize(Decimal("0.01")),
        opportunities=counted,
        frozen_at=start,
        signed=signed,
        accuracy=accuracy,
        closed_at=start + timedelta(days=32),
    )


def _band(amount: Decimal) -> str:
    if amount < 100_000:
        return BudgetBand.UNDER_100K
    if amount < 500_000:
        return BudgetBand.TO_500K
    if amount < 1_000_000:
        return BudgetBand.TO_1M
    if amount < 5_000_000:
        return BudgetBand.TO_5M
    return BudgetBand.OVER_5M
