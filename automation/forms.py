"""The rule form of the tenant admin: every mistake is an error on its field, before the
rule can be saved (an unknown field, a value of the wrong type, an action its recipients
or its event cannot take)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from automation import conditions
from automation.models import Action, Rule
from crm.events import get_action, get_kind, kinds
from crm.notify_adapters import DeliveryError, resolve_destination
from crm.roles import BOARD
from customers.models import CustomerLevel


def trigger_choices():
    return [(k.key, f"{k.label} ({k.key})") for k in kinds()]


class RuleForm(forms.ModelForm):
    trigger = forms.ChoiceField(label=_("when"), choices=trigger_choices)
    unless_kind = forms.ChoiceField(
        label=_("unless meanwhile"),
        choices=lambda: [("", "---------"), *trigger_choices()],
        required=False,
        help_text=_("… unless an event of this kind about the same subject comes first."),
    )
    webhook_url = forms.URLField(
        label=_("webhook URL"), max_length=500, required=False, assume_scheme="https"
    )
    level = forms.ChoiceField(
        label=_("level to set"), choices=[("", "---------"), *CustomerLevel.choices], required=False
    )

    class Meta:
        model = Rule
        fields = [
            "name",
            "trigger",
            "condition",
            "count_at_least",
            "count_days",
            "count_same",
            "wait_hours",
            "unless_kind",
            "action",
            "to_owner",
            "to_role",
            "to_member",
            "message",
            "level",
            "webhook_url",
            "webhook_secret",
            "cooldown_minutes",
            "is_active",
        ]
        widgets = {"condition": forms.Textarea(attrs={"rows": 2})}

    def clean(self):
        data = super().clean()
        trigger = data.get("trigger")
        kind = get_kind(trigger) if trigger else None
        if kind is None:
            return data
        fields = kind.fields
        try:
            conditions.check(trigger, data.get("condition") or "")
        except conditions.ConditionError as exc:
            self.add_error("condition", str(exc))
        same = [f.strip() for f in (data.get("count_same") or "").split(",") if f.strip()]
        if unknown := [f for f in same if f not in fields]:
            self.add_error(
                "count_same",
                _("Unknown fields %(unknown)s: this event has %(fields)s.")
                % {"unknown": ", ".join(unknown), "fields": ", ".join(sorted(fields))},
            )
        if same and not data.get("count_at_least"):
            self.add_error("count_at_least", _("Say how many times."))
        if data.get("unless_kind") and not data.get("wait_hours"):
            self.add_error("wait_hours", _("Say how many hours to wait for it."))
        self._clean_action(data, kind)
        return data

    def _clean_action(self, data, kind) -> None:
        action = data.get("action")
        if action in (Action.NOTIFY, Action.TASK):
            if not (data.get("to_owner") or data.get("to_role") or data.get("to_member")):
                self.add_error("to_role", _("Choose who: the owner, a role or a member."))
            if data.get("to_owner") and "owner_id" not in kind.fields:
                self.add_error("to_owner", _("This event has no owner."))
        if action == Action.TASK:
            # Only members with a daily board can be given a task on it.
            if data.get("to_role") and data["to_role"] not in BOARD:
                self.add_error("to_role", _("This role has no daily board: it cannot get tasks."))
            member = data.get("to_member")
            if member is not None and member.role not in BOARD:
                self.add_error(
                    "to_member", _("This member's role has no daily board: no tasks for them.")
                )
        member = data.get("to_member")
        if member is not None and not member.is_active:
            self.add_error("to_member", _("This member is not active."))
        if action == Action.SET_LEVEL:
            if not data.get("level"):
                self.add_error("level", _("Choose the level to set."))
            if kind.keyed_by != "customer":
                self.add_error("action", _("This event is not about a customer."))
        offered = get_action(action) if action else None
        if offered is not None and kind.key not in offered.kinds:
            self.add_error(
                "action",
                _("This action is for other events: %(kinds)s.")
                % {"kinds": ", ".join(offered.kinds)},
            )
        if action == Action.WEBHOOK:
            url = data.get("webhook_url")
            if not url:
                self.add_error("webhook_url", _("Give the webhook's address."))
            else:
                try:
                    resolve_destination(url)
                except DeliveryError as exc:
                    self.add_error("webhook_url", str(exc))
