"""The opportunity's page in sections (opportunities.views_page): what each section shows
to one member, and how a write is answered in its section.

The page is made of SECTIONS, each its own template (templates/opportunities/page_<name>
.html) and its own context (`Page`), so that an htmx request for one section (HX-Target:
its id) reads only what that section shows. After a write the sections that show what it
changes fetch themselves again: the answer carries the `opportunityChanged` event
(`historyChanged` for a refusal, which only adds a history entry).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.roles import VALIDITY_APPROVERS
from customers.access import customers_visible_to
from opportunities import chain, requirements, services
from opportunities.access import access_opportunity, sees_amounts
from opportunities.contributions import event_text, money
from opportunities.forms import (
    AttachmentForm,
    DecideForm,
    LoseForm,
    MemberAddForm,
    MemberEditForm,
    QuestionForm,
)
from opportunities.models import (
    APPROVAL_WINDOW_HOURS,
    Attachment,
    AttachmentKind,
    BudgetBand,
    EventKind,
    FileType,
    Opportunity,
    OpportunityContact,
    OpportunityEvent,
    Stage,
    TechnicalQuestion,
    ValidityRequest,
)

SECTIONS = (
    "summary",
    "stages",
    "validity",
    "chain",
    "attachments",
    "questions",
    "close",
    "history",
)
CHANGED = "opportunityChanged"  # the sections that show what a write changes refresh on it
HISTORY_CHANGED = "historyChanged"  # a refusal: only the history has a new entry
HISTORY_PER_PAGE = 20


# -- the page and its sections --------------------------------------------------------------


class Page:
    """One opportunity's page as one member sees it: each section's context, read when
    asked for (a fragment reads only its own). `forms` keeps bound forms with their
    errors, `refusals` the messages of refused writes, by section."""

    def __init__(self, request, membership, opportunity, *, forms=None, refusals=None):
        self.request = request
        self.membership = membership
        self.o = opportunity
        self.forms = forms or {}
        self.refusals = refusals or {}
        self._stages = None
        self._urls = None

    @property
    def urls(self) -> dict:
        if self._urls is None:
            o = self.o
            pid = o.public_id
            detail = reverse("opportunities:detail", args=[pid])
            names = ("edit", "attach", "question", "chain_add", "validity_request", "win", "lose")
            self._urls = {name: reverse(f"opportunities:{name}", args=[pid]) for name in names}
            self._urls.update(
                detail=detail,
                # The move goes through the pipeline's one endpoint (opportunities:advance).
                advance=detail + "advance/",
                customer=reverse("customers:detail", args=[o.customer.public_id]),
            )
        return self._urls

    @property
    def stages(self) -> list[Stage]:
        if self._stages is None:
            self._stages = list(Stage.objects.filter(is_active=True).order_by("position", "id"))
        return self._stages

    def common(self) -> dict:
        o = self.o
        can_write = services.can_write(self.membership, o)
        return {
            "opportunity": o,
            "urls": self.urls,
            "can_write": can_write,
            "can_work": can_write and o.is_open,
            "sees_amounts": sees_amounts(self.membership),
            "amount": money(o.amount),
            "refusals": self.refusals,
        }

    def summary(self) -> dict:
        o = self.o
        lead_url = None
        if o.origin_lead_id is not None:
            from leads.access import leads_visible_to

            if leads_visible_to(self.membership).filter(pk=o.origin_lead_id).exists():
                lead_url = reverse("leads:detail", args=[o.origin_lead.public_id])
        return {
            "lead_url": lead_url,
            "customer_visible": customers_visible_to(self.membership)
            .filter(pk=o.customer_id)
            .exists(),
            "budget_pending": o.budget_band == BudgetBand.PENDING,
        }

    def stages_context(self) -> dict:
        o = self.o
        current = o.stage
        here = (current.position, current.pk)
        path_ = []
        for check in requirements.evaluate(o, self.stages):
            at = (check.stage.position, check.stage.pk)
            state = "current" if at == here else ("passed" if at < here else "ahead")
            path_.append({"check": check, "state": state})
        ahead = [s for s in self.stages if (s.position, s.pk) > here]
        following = ahead[0] if ahead else None
        # What moving on to the next stage needs: every stage before it (skipping none).
        blocking = [
            c
            for step in path_
            if following
            and (step["check"].stage.position, step["check"].stage.pk)
            < (following.position, following.pk)
            for c in step["check"].missing
        ]
        return {
            "path": path_,
            "following": following,
            "blocking": blocking,
            "move_to": [s for s in self.stages if s.pk != current.pk],
        }

    def validity(self) -> dict:
        o = self.o
        now = timezone.now()
        window = timedelta(hours=APPROVAL_WINDOW_HOURS)
        asked = list(
            ValidityRequest.objects.filter(opportunity=o).select_related(
                "requested_by__user", "decided_by__user"
            )[:5]
        )
        latest = asked[0] if asked else None
        pending = latest if latest is not None and latest.decided_at is None else None
        live = pending is not None and now - pending.requested_at <= window
        approval = next((r for r in asked if r.approved), None)
        evidence = (
            AttachmentKind.objects.filter(is_active=True, counts_for_validity=True)
            .order_by("position", "id")
            .first()
        )
        urls = self.urls
        evidence_link = urls["detail"] + (f"?attach={evidence.code}" if evidence else "")
        checks = [
            {
                "key": "visit",
                "label": _("A visit or meeting logged"),
                "met": o.visit_at is not None,
                "when": o.visit_at,
                "how": _("Log a follow-up on the customer by visit or meeting."),
                "link": urls["customer"] + "#follow-up",
            },
            {
                "key": "budget",
                "label": _("A budget band other than 待确认"),
                "met": o.budget_band != BudgetBand.PENDING,
                "value": o.get_budget_band_display(),
                "how": _("Set the budget band."),
                "link": urls["edit"] + "#id_budget_band",
            },
            {
                "key": "evidence",
                "label": _("A requirement document or competitor table attached"),
                "met": o.evidence_at is not None,
                "when": o.evidence_at,
                "how": _("Attach a requirement document or a competitor table."),
                "link": evidence_link + "#attachments",
            },
            {
                "key": "approval",
                "label": _("A manager's approval within 72 hours of the request"),
                "met": o.approved_at is not None,
                "when": o.approved_at,
                "who": approval.decided_by if approval else None,
                "how": _("Ask for it below: a sales manager other than the owner approves."),
                "link": "#validity-approval",
            },
        ]
        approver = self.membership.role in VALIDITY_APPROVERS
        return {
            "checks": checks,
            "pending": pending,
            "pending_live": live,
            "pending_hours": int((now - pending.requested_at).total_seconds() // 3600)
            if pending
            else None,
            "last_decision": latest if latest is not None and latest.decided_at else None,
            "can_request": services.can_write(self.membership, o)
            and o.is_open
            and o.approved_at is None
            and not live,
            "can_decide": approver and live and o.is_open,
            "own_opportunity": self.membership.pk == o.owner_id,
            "decide_form": self.forms.get("decide") or DecideForm(),
            "window_hours": APPROVAL_WINDOW_HOURS,
        }

    def chain_context(self) -> dict:
        o = self.o
        members = list(
            OpportunityContact.objects.filter(opportunity=o)
            .select_related("contact", "role")
            .order_by("role__position", "role_id", "id")
        )
        bound = self.forms.get("member")
        rows = [
            (
                m,
                bound
                if bound is not None and bound.member.pk == m.pk
                else MemberEditForm(member=m),
            )
            for m in members
        ]
        return {
            "members": rows,
            "coverage": chain.coverage(members),
            "reach_next": chain.reach_next(members),
            "graph": chain.graph(members, centre=o.customer.name),
            "chain_form": self.forms.get("chain") or MemberAddForm(customer=o.customer),
        }

    def attachments(self) -> dict:
        hidden = not sees_amounts(self.membership)
        files = [
            (a, not (hidden and a.kind.is_contract))
            for a in Attachment.objects.filter(opportunity=self.o).select_related(
                "kind", "uploaded_by__user"
            )
        ]
        form = self.forms.get("attach") or AttachmentForm(
            initial={"kind": self.request.GET.get("attach", "")[:30]}
        )
        kinds = list(form.fields["kind"].queryset)
        return {
            "files": files,
            "attach_form": form,
            "kinds": [(k, ", ".join(FileType(t).label for t in k.allowed_types)) for k in kinds],
            "contracts_hidden": hidden,
        }

    def questions(self) -> dict:
        return {
            "questions": list(
                TechnicalQuestion.objects.filter(opportunity=self.o).select_related(
                    "opened_by__user"
                )
            ),
            "question_form": self.forms.get("question") or QuestionForm(),
        }

    def close(self) -> dict:
        o = self.o
        context = {"refusal": self.forms.get("refusal")}
        if o.is_open:
            context["lose_form"] = self.forms.get("lose") or LoseForm(opportunity=o)
        else:
            context["closed"] = Opportunity.objects.select_related(
                "lost_reason", "lost_blocker__contact", "lost_blocker__role"
            ).get(pk=o.pk)
        return context

    def history(self) -> dict:
        events = OpportunityEvent.objects.filter(opportunity=self.o).select_related(
            "actor__user", "from_stage", "to_stage"
        )
        page = Paginator(events, HISTORY_PER_PAGE).get_page(self.request.GET.get("page"))
        names = {s.code: s.name for s in self.stages}
        amounts = sees_amounts(self.membership)
        entries = []
        for event in page:
            missing = []
            if event.kind == EventKind.REFUSED:
                missing = (event.detail or {}).get("missing") or []
            entries.append(
                {
                    "event": event,
                    "text": event_text(event, amounts=amounts, stage_names=names),
                    "missing": missing,
                }
            )
        return {"history": page, "entries": entries}

    BUILDERS = {
        "summary": "summary",
        "stages": "stages_context",
        "validity": "validity",
        "chain": "chain_context",
        "attachments": "attachments",
        "questions": "questions",
        "close": "close",
        "history": "history",
    }

    def context(self, *sections: str) -> dict:
        context = self.common()
        for name in sections or SECTIONS:
            context.update(getattr(self, self.BUILDERS[name])())
        return context


def section_response(page: Page, name: str, *, status=200, event=None) -> HttpResponse:
    context = page.context(name)
    response = TemplateResponse(
        page.request, f"opportunities/page_{name}.html", context, status=status
    )
    if event:
        response["HX-Trigger"] = event
    return response


def page_response(page: Page, *, status=200) -> HttpResponse:
    context = page.context()
    return TemplateResponse(page.request, "opportunities/detail.html", context, status=status)


# -- answering a write ----------------------------------------------------------------------


def after_write(request, membership, opportunity, section: str, message: str) -> HttpResponse:
    """A write that succeeded: the section afresh (htmx), else back to the page."""
    if request.htmx:
        fresh = access_opportunity(membership, opportunity.public_id)
        return section_response(Page(request, membership, fresh), section, event=CHANGED)
    messages.success(request, message)
    return redirect(reverse("opportunities:detail", args=[opportunity.public_id]) + f"#{section}")


def with_errors(request, membership, opportunity, section: str, **forms) -> HttpResponse:
    """A form with errors (422): its section (htmx) or the whole page, the form bound."""
    page = Page(request, membership, opportunity, forms=forms)
    if request.htmx:
        return section_response(page, section, status=422)
    return page_response(page, status=422)


def refuse(request, membership, opportunity, section: str, message: str, status=409):
    """A write that may not happen: the section with the message (htmx), else the page."""
    page = Page(request, membership, opportunity, refusals={section: message})
    if request.htmx:
        return section_response(page, section, status=status)
    return page_response(page, status=status)
