"""The opportunity's page and its evidence over HTTP (F21–F25).

- GET `<uuid>/` (`detail`): the header, the stage path with every stage's required actions
  (met or missing, each linked to where it is done) and the move form, the validity funnel
  (F23), the decision chain (F22: table, graph, coverage, "reach next"), attachments,
  technical questions, winning and losing, and the history. With htmx, one section alone
  (`HX-Target`: one of SECTIONS), which is how the sections refresh themselves.
- GET/POST `<uuid>/edit/` (`edit`), GET/POST `new/?customer=<uuid>` or `?lead=<uuid>`
  (`create`): the opportunity's fields; field errors as 422.
- POST `<uuid>/attachments/` (`attach`), GET `<uuid>/attachments/<uuid>/` (`attachment`,
  the file itself, through opportunities.access.access_attachment), POST
  `…/attachments/<uuid>/effective/` (`attachment_effective`); POST `<uuid>/questions/`
  (`question`), `…/questions/<uuid>/close/` (`question_close`); POST `<uuid>/chain/`
  (`chain_add`), `…/chain/<uuid>/` (`chain_member`), `…/chain/<uuid>/remove/`
  (`chain_remove`); POST `<uuid>/validity/request/` (`validity_request`),
  `…/validity/<uuid>/decide/` (`validity_decide`); POST `<uuid>/win/`, `<uuid>/lose/`.

Every view reads the opportunity through opportunities.access.access_opportunity (404 for
another tenant's or another rep's id; the writes for its owner and the managers only) and
a sub-object by its public id within that opportunity (404 otherwise). Writes go through
opportunities.services. An htmx form gets its section back: 200 with the
`opportunityChanged` event (the sections that depend on it fetch themselves again), 422
with field errors, 403/409 with the refusal (a refused win lists the missing actions); a
plain post gets a redirect, or the page with the errors.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.roles import OPPORTUNITY_CREATORS, OPPORTUNITY_LIST, OPPORTUNITY_WRITERS
from customers.access import access_customer
from opportunities import services
from opportunities.access import access_attachment, access_opportunity
from opportunities.forms import (
    AttachmentForm,
    DecideForm,
    EditForm,
    LoseForm,
    MemberAddForm,
    MemberEditForm,
    OpportunityForm,
    QuestionForm,
    add_service_errors,
)
from opportunities.models import (
    Attachment,
    BudgetBand,
    FileType,
    OpportunityContact,
    TechnicalQuestion,
    ValidityRequest,
)
from opportunities.views_page_sections import (
    HISTORY_CHANGED,
    SECTIONS,
    Page,
    after_write,
    page_response,
    refuse,
    section_response,
    with_errors,
)

CONTENT_TYPES = {
    FileType.PDF: "application/pdf",
    FileType.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    FileType.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    FileType.PNG: "image/png",
    FileType.JPEG: "image/jpeg",
    FileType.CSV: "text/csv",
}


def _member(request: HttpRequest):
    membership = request.membership
    if membership is None or membership.role not in OPPORTUNITY_LIST:
        raise PermissionDenied(_("Opportunities are for the members of this tenant."))
    return membership


def _one(queryset, public_id):
    found = queryset.filter(public_id=public_id).first()
    if found is None:
        raise Http404("Not found.")
    return found


@require_GET
def opportunity_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = _member(request)
    opportunity = access_opportunity(membership, public_id)
    page = Page(request, membership, opportunity)
    target = request.htmx.target if request.htmx else None
    if target in SECTIONS:
        return section_response(page, target)
    return page_response(page)


def _message(exc: ValidationError) -> str:
    return " ".join(str(m) for m in exc.messages)


def _writer(request, public_id):
    membership = _member(request)
    return membership, access_opportunity(membership, public_id, write=True)


# -- edit and create ------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def opportunity_edit(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership, opportunity = _writer(request, public_id)
    may_assign = membership.role in OPPORTUNITY_WRITERS
    kwargs = {"opportunity": opportunity, "tenant": request.tenant, "may_assign": may_assign}
    form = EditForm(request.POST if request.method == "POST" else None, **kwargs)
    if request.method == "POST" and form.is_valid():
        try:
            services.opportunity_update(
                tenant=request.tenant,
                acting_member=membership,
                opportunity=opportunity,
                changes=form.changes(),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Opportunity saved."))
            return redirect("opportunities:detail", public_id=opportunity.public_id)
    context = {"opportunity": opportunity, "form": form, "sees_amounts": True}
    status = 422 if form.is_bound else 200
    return TemplateResponse(request, "opportunities/edit.html", context, status=status)


def _source(request, membership):
    """(customer, lead) the new opportunity is opened from: `?lead=` (read through
    leads.access as the lead pages do) or `?customer=` (customers.access); 404 for an id
    the member cannot read."""
    from leads.access import access_lead

    try:
        lead_id = uuid.UUID(request.GET["lead"]) if request.GET.get("lead") else None
        customer_id = uuid.UUID(request.GET["customer"]) if request.GET.get("customer") else None
    except ValueError:
        raise Http404("No such lead or customer.") from None
    if lead_id is not None:
        lead = access_lead(membership, lead_id)
        return lead.customer, lead
    if customer_id is not None:
        return access_customer(membership, customer_id), None
    raise Http404("Open an opportunity from a customer or a verified lead.")


def _unverified(lead) -> str:
    from leads.models import LeadStatus

    if lead.status == LeadStatus.INVALID:
        return _("This lead was verified as invalid: it does not become an opportunity.")
    if lead.verified_at is None:
        return _("Verify this lead first: only a lead verified valid becomes an opportunity.")
    if lead.customer_id is None:
        return _("This lead has no customer yet: it cannot become an opportunity.")
    return ""


@require_http_methods(["GET", "POST"])
def opportunity_create(request: HttpRequest) -> HttpResponse:
    membership = _member(request)
    if membership.role not in OPPORTUNITY_CREATORS:
        raise PermissionDenied(_("Reps and sales managers open opportunities."))
    customer, lead = _source(request, membership)
    refusal = _unverified(lead) if lead is not None else ""
    if refusal:
        context = {"message": refusal, "lead": lead}
        return TemplateResponse(request, "customers/conflict.html", context, status=409)
    may_assign = membership.role in OPPORTUNITY_WRITERS
    initial = {"budget_band": BudgetBand.PENDING}
    if lead is not None:
        initial["contact"] = lead.contact
    default_owner = (lead.owner if lead is not None else None) or customer.owner
    if may_assign and default_owner is not None:
        initial["owner"] = default_owner
    form = OpportunityForm(
        request.POST if request.method == "POST" else None,
        customer=customer,
        tenant=request.tenant,
        may_assign=may_assign,
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            opportunity = services.opportunity_create(
                tenant=request.tenant,
                acting_member=membership,
                customer=customer,
                origin_lead=lead,
                name=data["name"],
                owner=data.get("owner"),
                contact=data["contact"],
                product_line=data["product_line"],
                amount=data["amount"],
                budget_band=data["budget_band"],
                expected_close=data["expected_close"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Opportunity opened."))
            return redirect("opportunities:detail", public_id=opportunity.public_id)
    context = {
        "form": form,
        "customer": customer,
        "lead": lead,
        "action": request.get_full_path(),
        "sees_amounts": True,
    }
    status = 422 if form.is_bound else 200
    return TemplateResponse(request, "opportunities/create.html", context, status=status)


def _form_write(request, membership, opportunity, form, save, *, section, done, name):
    """A section's form round trip: the form validated, then `save(cleaned_data)` (the
    service; its ValidationError shown on the form); a success answers `after_write` with
    `done`, a refusal the section again with the form and its errors (`name`: the
    section's context name for it)."""
    if form.is_valid():
        try:
            save(form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return after_write(request, membership, opportunity, section, done)
    return with_errors(request, membership, opportunity, section, **{name: form})


# -- attachments ----------------------------------------------------------------------------


@require_POST
def attach(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership, opportunity = _writer(request, public_id)
    form = AttachmentForm(request.POST, request.FILES)
    return _form_write(
        request,
        membership,
        opportunity,
        form,
        lambda data: services.attachment_add(
            tenant=request.tenant,
            acting_member=membership,
            opportunity=opportunity,
            kind=data["kind"],
            upload=data["file"],
            effective=data["effective"],
        ),
        section="attachments",
        done=_("File attached."),
        name="attach",
    )


@require_GET
def attachment_download(request, public_id: uuid.UUID, attachment_id: uuid.UUID):
    membership = _member(request)
    opportunity = access_opportunity(membership, public_id)
    attachment = access_attachment(membership, opportunity, attachment_id)
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404("The file is gone.") from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=attachment.name,
        content_type=CONTENT_TYPES.get(attachment.file_type, "application/octet-stream"),
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
def attachment_effective(request, public_id: uuid.UUID, attachment_id: uuid.UUID):
    membership, opportunity = _writer(request, public_id)
    attachment = _one(
        Attachment.objects.filter(opportunity=opportunity).select_related("kind", "opportunity"),
        attachment_id,
    )
    try:
        services.attachment_make_effective(
            tenant=request.tenant, acting_member=membership, attachment=attachment
        )
    except ValidationError as exc:
        return refuse(request, membership, opportunity, "attachments", _message(exc))
    return after_write(
        request, membership, opportunity, "attachments", _("Contract marked 已生效.")
    )


# -- technical questions --------------------------------------------------------------------


@require_POST
def question(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership, opportunity = _writer(request, public_id)
    return _form_write(
        request,
        membership,
        opportunity,
        QuestionForm(request.POST),
        lambda data: services.question_mark(
            tenant=request.tenant,
            acting_member=membership,
            opportunity=opportunity,
            text=data["text"],
        ),
        section="questions",
        done=_("Question marked."),
        name="question",
    )


@require_POST
def question_close(request, public_id: uuid.UUID, question_id: uuid.UUID):
    membership, opportunity = _writer(request, public_id)
    found = _one(
        TechnicalQuestion.objects.filter(opportunity=opportunity).select_related("opportunity"),
        question_id,
    )
    services.question_close(tenant=request.tenant, acting_member=membership, question=found)
    return after_write(request, membership, opportunity, "questions", _("Question answered."))


# -- the decision chain ---------------------------------------------------------------------


@require_POST
def chain_add(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership, opportunity = _writer(request, public_id)
    return _form_write(
        request,
        membership,
        opportunity,
        MemberAddForm(request.POST, customer=opportunity.customer),
        lambda data: services.chain_member_add(
            tenant=request.tenant,
            acting_member=membership,
            opportunity=opportunity,
            role=data["role"],
            contact=data["contact"],
            contact_name=data["contact_name"],
            contact_title=data["contact_title"],
            contact_phone=data["contact_phone"],
            influence=data["influence"],
            attitude=data["attitude"],
            contact_status=data["contact_status"],
            key_demands=data["key_demands"],
        ),
        section="chain",
        done=_("Member mapped."),
        name="chain",
    )


def _member_of(opportunity, member_id) -> OpportunityContact:
    return _one(
        OpportunityContact.objects.filter(opportunity=opportunity).select_related(
            "contact", "role", "opportunity"
        ),
        member_id,
    )


@require_POST
def chain_member(request, public_id: uuid.UUID, member_id: uuid.UUID):
    membership, opportunity = _writer(request, public_id)
    member = _member_of(opportunity, member_id)
    form = MemberEditForm(request.POST, member=member)

    def save(data):
        changes = {name: data[name] for name in form.changed_data}
        if changes:
            services.chain_member_update(
                tenant=request.tenant, acting_member=membership, member=member, changes=changes
            )

    return _form_write(
        request,
        membership,
        opportunity,
        form,
        save,
        section="chain",
        done=_("Member saved."),
        name="member",
    )


@require_POST
def chain_remove(request, public_id: uuid.UUID, member_id: uuid.UUID):
    membership, opportunity = _writer(request, public_id)
    member = _member_of(opportunity, member_id)
    services.chain_member_remove(tenant=request.tenant, acting_member=membership, member=member)
    return after_write(request, membership, opportunity, "chain", _("Member removed."))


# -- validity (F23) -------------------------------------------------------------------------


@require_POST
def validity_request(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership, opportunity = _writer(request, public_id)
    try:
        services.validity_request(
            tenant=request.tenant, acting_member=membership, opportunity=opportunity
        )
    except ValidationError as exc:
        return refuse(request, membership, opportunity, "validity", _message(exc))
    return after_write(request, membership, opportunity, "validity", _("Approval requested."))


@require_POST
def validity_decide(request, public_id: uuid.UUID, request_id: uuid.UUID):
    membership, opportunity = _writer(request, public_id)
    asked = _one(
        ValidityRequest.objects.filter(opportunity=opportunity).select_related("opportunity"),
        request_id,
    )
    form = DecideForm(request.POST)
    if not form.is_valid():
        return with_errors(request, membership, opportunity, "validity", decide=form)
    try:
        services.validity_decide(
            tenant=request.tenant,
            acting_member=membership,
            request=asked,
            approve=form.cleaned_data["approve"],
            note=form.cleaned_data["note"],
        )
    except PermissionDenied as exc:
        return refuse(request, membership, opportunity, "validity", str(exc), status=403)
    except ValidationError as exc:
        return refuse(request, membership, opportunity, "validity", _message(exc))
    message = _("Validity approved.") if form.cleaned_data["approve"] else _("Validity refused.")
    return after_write(request, membership, opportunity, "validity", message)


# -- won and lost (F24, F25) ----------------------------------------------------------------


@require_POST
def win(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership, opportunity = _writer(request, public_id)
    try:
        services.opportunity_win(
            tenant=request.tenant, acting_member=membership, opportunity=opportunity
        )
    except services.RequirementsUnmet as exc:
        message = _("Not won yet: these required actions are missing.")
        page = Page(
            request,
            membership,
            opportunity,
            forms={"refusal": exc},
            refusals={"close": message},
        )
        if request.htmx:
            return section_response(page, "close", status=409, event=HISTORY_CHANGED)
        return page_response(page, status=409)
    except ValidationError as exc:
        return refuse(request, membership, opportunity, "close", _message(exc))
    return after_write(request, membership, opportunity, "close", _("Opportunity won."))


@require_POST
def lose(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership, opportunity = _writer(request, public_id)
    return _form_write(
        request,
        membership,
        opportunity,
        LoseForm(request.POST, opportunity=opportunity),
        lambda data: services.opportunity_lose(
            tenant=request.tenant,
            acting_member=membership,
            opportunity=opportunity,
            reason=data["reason"],
            detail=data["detail"],
            blocker=data["blocker"],
        ),
        section="close",
        done=_("Opportunity lost."),
        name="lose",
    )


urlpatterns = [
    path("new/", opportunity_create, name="create"),
    path("<uuid:public_id>/", opportunity_detail, name="detail"),
    path("<uuid:public_id>/edit/", opportunity_edit, name="edit"),
    path("<uuid:public_id>/attachments/", attach, name="attach"),
    path(
        "<uuid:public_id>/attachments/<uuid:attachment_id>/",
        attachment_download,
        name="attachment",
    ),
    path(
        "<uuid:public_id>/attachments/<uuid:attachment_id>/effective/",
        attachment_effective,
        name="attachment_effective",
    ),
    path("<uuid:public_id>/questions/", question, name="question"),
    path(
        "<uuid:public_id>/questions/<uuid:question_id>/close/",
        question_close,
        name="question_close",
    ),
    path("<uuid:public_id>/chain/", chain_add, name="chain_add"),
    path("<uuid:public_id>/chain/<uuid:member_id>/", chain_member, name="chain_member"),
    path("<uuid:public_id>/chain/<uuid:member_id>/remove/", chain_remove, name="chain_remove"),
    path("<uuid:public_id>/validity/request/", validity_request, name="validity_request"),
    path(
        "<uuid:public_id>/validity/<uuid:request_id>/decide/",
        validity_decide,
        name="validity_decide",
    ),
    path("<uuid:public_id>/win/", win, name="win"),
    path("<uuid:public_id>/lose/", lose, name="lose"),
]
