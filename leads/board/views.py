"""The daily board's pages (F15, F19): the rep's home page, closing the day, and the
manager's view of every rep's closed day. The data and the ranking are in leads/board/ranking.py;
the sections of other apps beside the list come from the kernel's registry (crm.board);
verifying a lead and logging a follow-up are the `leads:verify` and `leads:follow_up`
endpoints, loaded in place with htmx."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from crm import board as board_sections
from crm import navigation
from crm.access import access_membership
from crm.formatting import format_date, format_datetime, format_phone
from crm.models import Membership, Role
from crm.roles import BOARD, MANAGERS, OWNERS
from crm.tenancy import tenant_today
from leads.assignment.policy import active_params
from leads.board import ranking as boards
from leads.models import DailySummary

# Items rendered, the highest ranked; the counts cover them all. A day's work fits well
# within it, and the page stays fast for a rep who has let hundreds pile up.
SHOWN_MAX = 100


def _viewer(request: HttpRequest) -> Membership:
    membership = request.membership
    if membership is None or membership.role not in BOARD:
        raise PermissionDenied(_("The daily board is for sales reps and their managers."))
    return membership


def _board_owner(request: HttpRequest, viewer: Membership) -> Membership:
    """Whose board: the viewer's own, or with `?rep=<membership uuid>` a colleague's for
    managers and admins (another tenant's or an unknown uuid: 404; a rep asking for
    someone else's: 403)."""
    wanted = request.GET.get("rep", "").strip()
    if not wanted:
        return viewer
    try:
        wanted_id = uuid.UUID(wanted)
    except ValueError as exc:
        raise Http404("No such member in this tenant.") from exc
    if wanted_id == viewer.public_id:
        return viewer
    owner = access_membership(viewer, wanted_id)
    if viewer.role not in MANAGERS:
        raise PermissionDenied(_("Only managers open other reps' boards."))
    return owner


def _reps(viewer: Membership) -> list[Membership]:
    return list(
        Membership.objects.in_tenant(viewer.tenant)
        .active()
        .filter(role__in=OWNERS)
        .select_related("user")
        .order_by("user__username")
    )


@require_GET
def board(request: HttpRequest) -> HttpResponse:
    viewer = _viewer(request)
    owner = _board_owner(request, viewer)
    own = owner.pk == viewer.pk
    now = timezone.now()
    params = active_params()  # the lead score's base and the rep's default cap, read once
    data = boards.board_for(owner, now=now, base=params.base_score)
    labels = {key: str(text) for key, text in LABELS.items()}
    actions = None
    if own:
        verify_forms = {}
        if data.open_load:
            from customers.models import PresetKind
            from customers.services import presets
            from leads.followups_context import verify_form_context
            from leads.verification import invalid_reasons

            verify_forms = verify_form_context(
                today=data.today,
                reasons=invalid_reasons(),
                actions=presets(PresetKind.ACTION),
            )
        actions = _ActionStamps(request, labels, verify_forms)
    context = {
        "board": data,
        "rows": _rows(data.items[:SHOWN_MAX], labels, actions),
        "labels": labels,
        "hidden": max(0, len(data.items) - SHOWN_MAX),
        "counts": data.counts,
        "owner": owner,
        "own": own,
        "is_manager": viewer.role in MANAGERS,
        # The other apps' sections (crm.board): stalled opportunities, at-risk customers.
        "sections": board_sections.sections_for(owner, data.today),
        "summary": _summary_context(boards.summary_of(owner, data.today)),
        "tomorrow": data.today + timedelta(days=1),
    }
    if own:
        # The registered home cards (the observation zone's training card) come with the
        # rep to their board, which is now their home page.
        context["cards"] = [
            render_to_string(template, card_context, request)
            for template, card_context in navigation.home_cards_for(request)
        ]
        context["more"] = [
            i for i in navigation.items_for(request) if not i.in_navbar and i.key != "home"
        ]
    if owner.role in OWNERS:
        from leads.assignment.reps import rep_load

        # The open load is the board's unverified leads: the same rows, counted once.
        context["load"] = rep_load(owner, params=params, now=now, open_count=data.open_load)
    if viewer.role in MANAGERS:
        context["reps"] = _reps(viewer)
    return TemplateResponse(request, "leads/board.html", context)


# -- what an item shows ------------------------------------------------------------------------
# Worded here rather than in the template: the board renders up to SHOWN_MAX items and a
# template tag per value costs far more than a Python expression (bench/board.py).

_ZERO = uuid.UUID(int=0)


def _url_maker(name: str):
    """`reverse(name, args=[uuid])` for many uuids, reversing once."""
    pattern = reverse(name, args=[_ZERO]).replace(str(_ZERO), "{}")
    return pattern.format


def _num(value: float, digits: int = 2) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"


def _hm(moment: datetime) -> str:
    return format_datetime(moment)


# The words every item repeats, translated once per page.
LABELS = {
    "rank_aria": gettext_lazy("Rank: how it is computed"),
    "why_rank": gettext_lazy("Why this rank"),
    "customer_level": gettext_lazy("Customer level"),
    "source_grade": gettext_lazy("Source grade"),
    "lead_score": gettext_lazy("Lead score"),
    "no_customer": gettext_lazy("no customer yet"),
    "suspect": gettext_lazy("Suspect"),
    "why_suspect": gettext_lazy("Why this lead looks suspect"),
    "urgency": gettext_lazy("Urgency"),
    "time_overdue": gettext_lazy("Time overdue"),
    "rank": gettext_lazy("Rank"),
    "last_contact": gettext_lazy("last contact"),
    "revisit_of": gettext_lazy("revisit of"),
    "log_follow_up": gettext_lazy("Log a follow-up"),
}

KIND_CLASSES = {
    boards.Kind.VERIFY: "text-bg-primary",
    boards.Kind.REVISIT: "text-bg-info",
    boards.Kind.FOLLOW_UP: "text-bg-success",
    boards.Kind.VALID: "text-bg-success",
}

_ROW = '<tr><td>{}</td><td>{}</td><td class="text-end">×{}</td></tr>'


def _breakdown(item: boards.BoardItem, labels: dict[str, str]) -> str:
    """The rank's table rows (its popover): level (the customer's, or the lead's source
    grade), the lead score for a lead waiting for its verdict, urgency, time overdue,
    and the product."""
    if item.level_of == "grade":
        level = format_html(
            '{} <span class="text-body-secondary">({})</span>', item.level, labels["no_customer"]
        )
        rows = [format_html(_ROW, labels["source_grade"], level, _num(item.level_weight))]
    else:
        rows = [format_html(_ROW, labels["customer_level"], item.level, _num(item.level_weight))]
    if item.scored:
        rows.append(
            format_html(
                _ROW,
                labels["lead_score"],
                f"{item.score} ÷ {item.score_base}",
                _num(item.score_factor),
            )
        )
    rows.append(format_html(_ROW, labels["urgency"], item.urgency_label, _num(item.urgency_weight)))
    rows.append(
        format_html(
            _ROW,
            labels["time_overdue"],
            f"1 + {_num(item.hours_overdue, 1)} h × {_num(item.per_hour, 3)}",
            _num(item.time_factor),
        )
    )
    rows.append(
        format_html(
            '<tr class="border-top fw-semibold"><td>{}</td><td></td><td class="text-end">{}</td>'
            "</tr>",
            labels["rank"],
            _num(item.rank),
        )
    )
    return mark_safe("".join(rows))  # noqa: S308 (each row is format_html-escaped)


class _ActionStamps:
    """An item's buttons (verify, the follow-up form) rendered once per page with
    placeholders, then stamped with each item's key and URLs: the same markup a hundred
    times over costs a hundred template renders otherwise. Key and URLs are made of
    [0-9a-z/-] only, so they need no escaping."""

    KEY, VERIFY, FOLLOW_UP = "__item_key__", "/__verify_url__/", "/__follow_up_url__/"

    def __init__(self, request, labels: dict[str, str], verify_forms: dict):
        self.request = request
        self.labels = labels
        self.verify_forms = verify_forms  # leads.followups_context.verify_form_context()
        self._stamps: dict[tuple[bool, bool], str] = {}

    def _stamp(self, verify: bool, follow_up: bool) -> str:
        if (verify, follow_up) not in self._stamps:
            context = {
                **self.verify_forms,
                "key": self.KEY,
                "verify_url": self.VERIFY if verify else "",
                "follow_up_url": self.FOLLOW_UP if follow_up else "",
                "labels": self.labels,
            }
            self._stamps[verify, follow_up] = render_to_string(
                "leads/board_item_actions.html", context, self.request
            )
        return self._stamps[verify, follow_up]

    def __call__(self, key: str, verify_url: str, follow_up_url: str) -> str:
        html = self._stamp(bool(verify_url), bool(follow_up_url)).replace(self.KEY, key)
        html = html.replace(self.VERIFY, verify_url).replace(self.FOLLOW_UP, follow_up_url)
        return mark_safe(html)  # noqa: S308 (escaped when rendered; the parts are [0-9a-z/-])


def _rows(
    items: list[boards.BoardItem], labels: dict[str, str], actions: _ActionStamps | None
) -> list[dict]:
    lead_url, verify_url = _url_maker("leads:detail"), _url_maker("leads:verify")
    lead_follow_up = _url_maker("leads:follow_up")
    customer_url, customer_follow_up = (
        _url_maker("customers:detail"),
        _url_maker("customers:follow_up"),
    )
    rows = []
    for item in items:
        lead, customer = item.lead, item.customer
        row = {
            "item": item,
            "key": item.key,
            "kind": item.kind,
            "kind_label": str(item.kind_label),
            "kind_class": KIND_CLASSES[item.kind],
            "group": boards.GROUPS.get(item.kind, item.kind),
            "overdue": item.is_overdue,
            "rank": _num(item.rank, 1),
            "rank_exact": _num(item.rank, 4),
            "breakdown": item.breakdown(),
            "breakdown_rows": _breakdown(item, labels),
            "title": item.title,
            "title_url": lead_url(lead.public_id)
            if lead is not None
            else (customer_url(customer.public_id) if customer is not None else ""),
            "verify_url": verify_url(lead.public_id) if item.needs_verdict else "",
            "follow_up_url": lead_follow_up(lead.public_id)
            if lead is not None
            else (customer_follow_up(customer.public_id) if customer is not None else ""),
        }
        if actions is not None:
            row["actions"] = actions(row["key"], row["verify_url"], row["follow_up_url"])
        if item.kind == boards.Kind.FOLLOW_UP:
            row.update(_follow_up_texts(item))
        else:
            row.update(_lead_texts(item, lead_url))
        rows.append(row)
    return rows


def _follow_up_texts(item: boards.BoardItem) -> dict:
    interaction = item.interaction
    due = format_date(interaction.next_action_due)
    contact = interaction.contact if interaction.contact_id else None
    action = interaction.next_action.name
    return {
        "due": _("Before %(due)s: %(action)s") % {"due": due, "action": action},
        "when": _("overdue since %(due)s") % {"due": due} if item.is_overdue else _("due today"),
        "who": (contact.name or format_phone(contact.phone)) if contact is not None else "",
        "last": _("last contact %(at)s") % {"at": _hm(interaction.at)},
        "note": interaction.note,
    }


def _lead_texts(item: boards.BoardItem, lead_url) -> dict:
    lead = item.lead
    if not item.needs_verdict:
        # Verified valid, no next step yet: contact the customer and set one.
        if item.is_overdue:
            when = _("Verified valid, no next step for %(hours)s h: follow it up") % {
                "hours": round(item.hours_overdue)
            }
        else:
            when = _("Verified valid: follow it up and set the next step (by %(until)s)") % {
                "until": _hm(item.deadline)
            }
    elif item.is_overdue:
        when = _("24 h clock ran out %(hours)s h ago") % {"hours": round(item.hours_overdue)}
    else:
        when = _("%(hours)s h left to verify (until %(until)s)") % {
            "hours": round(item.hours_left),
            "until": _hm(item.deadline),
        }
    original = lead.revisit_of if lead.revisit_of_id else None
    score = "" if lead.score is None else _("score %(score)s") % {"score": lead.score}
    return {
        "when": when,
        "who": lead.contact_name,
        "phone": format_phone(lead.phone),
        "source": " · ".join(
            p for p in (lead.channel.name, lead.get_source_grade_display(), score) if p
        ),
        "original": str(original) if original is not None else "",
        "original_url": lead_url(original.public_id) if original is not None else "",
        "note": lead.message,
        "verdict": lead.get_verification_display() if lead.verification else "",
        "suspect": "；".join(lead.suspect_reason_texts()) if lead.is_suspect else None,
    }


def _summary_context(summary: DailySummary | None) -> dict | None:
    if summary is None:
        return None
    tomorrow = []
    for action in summary.tomorrow or []:
        try:
            due = datetime.fromisoformat(action.get("due", ""))
        except (TypeError, ValueError):
            due = None
        tomorrow.append({**action, "due_at": due})
    return {"row": summary, "tomorrow": tomorrow, "details": summary.details or {}}


@require_POST
def day_close_view(request: HttpRequest) -> HttpResponse:
    """ "Close the day": write (or update) today's summary and show it."""
    membership = _viewer(request)
    summary = boards.day_close(membership)
    if request.htmx:
        context = {"summary": _summary_context(summary), "own": True, "fresh": True}
        return TemplateResponse(request, "leads/board_summary.html", context)
    messages.success(request, _("Your day is closed: the summary is below."))
    return redirect("board:board")


# -- the manager's view of the closed days --------------------------------------------------


class SummaryDayForm(forms.Form):
    """The day of the closed-days page: a date, today (in the tenant's zone) by default,
    never a day that has not happened yet."""

    day = forms.DateField(label=gettext_lazy("Day"), required=False)

    def __init__(self, data, *, today: date):
        super().__init__(data)
        self.today = today

    def clean_day(self) -> date:
        day = self.cleaned_data["day"] or self.today
        if day > self.today:
            raise forms.ValidationError(
                _("%(day)s is in the future: choose today or an earlier day.")
                % {"day": format_date(day)}
            )
        return day


@require_GET
def summaries(request: HttpRequest) -> HttpResponse:
    """Every rep's closed day for one day (`?day=YYYY-MM-DD`, today by default); reps who
    did not close theirs are listed as such. Managers and admins only. A day that is not a
    date or lies in the future is refused (400) with the error on the field."""
    viewer = _viewer(request)
    if viewer.role not in MANAGERS:
        raise PermissionDenied(_("The day summaries are for managers and admins."))
    today = tenant_today()
    form = SummaryDayForm(request.GET, today=today)
    if not form.is_valid():
        context = {"form": form, "today": today, "previous": today - timedelta(days=1)}
        return TemplateResponse(request, "leads/board_summaries.html", context, status=400)
    day = form.cleaned_data["day"]
    closed = {
        s.membership_id: s
        for s in DailySummary.objects.filter(day=day).select_related("membership__user")
    }
    rows = []
    for rep in _reps(viewer):
        rows.append({"member": rep, "summary": _summary_context(closed.pop(rep.pk, None))})
    # Others who closed a day too (a manager with leads, a rep who left since).
    for summary in sorted(closed.values(), key=lambda s: s.membership.user.get_username()):
        rows.append({"member": summary.membership, "summary": _summary_context(summary)})
    context = {
        "form": form,
        "day": day,
        "today": today,
        "previous": day - timedelta(days=1),
        "next": day + timedelta(days=1) if day < today else None,
        "rows": rows,
        "closed_count": sum(1 for r in rows if r["summary"] is not None),
    }
    return TemplateResponse(request, "leads/board_summaries.html", context)


# -- registration (leads/apps.py) -----------------------------------------------------------


def register() -> None:
    """The board's menu entries, and the board as the rep's home page."""
    from crm.navigation import REPORTS, NavItem, register_home_redirect
    from crm.navigation import register as register_item

    register_item(
        NavItem(
            "board",
            gettext_lazy("Today"),
            "board:board",
            "list-check",
            description=gettext_lazy(
                "Today's work in one ranked list: leads to verify, follow-ups due, revisits."
            ),
            roles=OWNERS,
            order=5,
        )
    )
    register_item(
        NavItem(
            "board_summaries",
            gettext_lazy("Closed days"),
            "board:summaries",
            "journal-check",
            group=REPORTS,
            description=gettext_lazy(
                "Every rep's day as they closed it: contacts, loops closed, what is left; "
                "and each rep's board."
            ),
            roles=MANAGERS,
            order=25,
        )
    )
    register_home_redirect(Role.REP, "board:board")
