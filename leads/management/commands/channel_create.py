"""Create a lead channel from the command line and print its credentials as JSON.

    python manage.py channel_create --tenant demo --type douyin --name "抖音线索广告" \\
        --grade A --preset douyin

stdout carries exactly one JSON object, so integrations can be scripted::

    {"key": "…", "secret": "…", "url": "<PUBLIC_BASE_URL>/hooks/<key>/",
     "form_url": "<PUBLIC_BASE_URL>/f/<key>/"}

The secret is shown this once (as in the admin); a rotation in the admin makes a new one.
See docs/webhooks.md.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from crm import inbox
from crm.audit import audit
from crm.models import Tenant
from crm.tenancy import tenant_context
from leads.models import Channel, ChannelType, MappingPreset, SourceGrade
from leads.models.choices import preset_choices, presets_for


def _choices(choices) -> str:
    return ", ".join(value for value, _label in choices if value)


def public_url(name: str, key: str) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse(name, args=[key])


class Command(BaseCommand):
    help = "Create a lead channel in a tenant and print its key, secret and URLs as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="The tenant's slug, e.g. demo.")
        parser.add_argument(
            "--type",
            required=True,
            dest="channel_type",
            help=f"One of: {_choices(ChannelType.choices)}.",
        )
        parser.add_argument("--name", required=True, help="Shown to users, e.g. 官网表单.")
        parser.add_argument(
            "--grade",
            default=SourceGrade.B,
            help="Default source grade of its leads: A, B or C (default B).",
        )
        parser.add_argument(
            "--preset",
            default=MappingPreset.NONE,
            help=(
                f"Mapping preset: {_choices(preset_choices())} "
                "(default none: payload keys are lead field names, or for a helpdesk "
                "channel the ticket field names)."
            ),
        )
        parser.add_argument(
            "--app-id",
            default="",
            dest="app_id",
            help="Helpdesk channels: the helpdesk's app ID for its native signing (Sobot: appid).",
        )

    def handle(
        self,
        *args,
        tenant: str,
        channel_type: str,
        name: str,
        grade: str,
        preset: str,
        app_id: str = "",
        **options,
    ):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            known = ", ".join(Tenant.objects.order_by("slug").values_list("slug", flat=True)[:20])
            raise CommandError(f"Unknown tenant {tenant!r}. Known tenants: {known or 'none'}.")
        if not found.is_active:
            raise CommandError(f"Tenant {tenant!r} is deactivated: its channels would not answer.")
        if channel_type not in ChannelType.values:
            valid = _choices(ChannelType.choices)
            raise CommandError(f"Unknown channel type {channel_type!r}. Valid types: {valid}.")
        grade = grade.upper()
        if grade not in SourceGrade.values:
            raise CommandError(
                f"Unknown grade {grade!r}. Valid grades: {_choices(SourceGrade.choices)}."
            )
        allowed = presets_for(channel_type)
        if preset not in allowed:
            valid = ", ".join(p for p in allowed if p)
            raise CommandError(
                f"Unknown preset {preset!r} for a {channel_type} channel. Valid presets: "
                f"{valid} (or leave it out)."
            )
        app_id = app_id.strip()
        if len(app_id) > Channel._meta.get_field("native_app_id").max_length:
            raise CommandError("The app ID is too long (at most 64 characters).")
        if inbox.needs_app_id(channel_type, preset) and not app_id:
            raise CommandError(
                f"A {preset} channel needs --app-id: the helpdesk signs with its app ID."
            )
        name = name.strip()
        if not name:
            raise CommandError("The channel needs a name.")
        if len(name) > Channel._meta.get_field("name").max_length:
            raise CommandError("The name is too long (at most 80 characters).")

        with tenant_context(found):
            channel = Channel.objects.create(
                tenant=found,
                name=name,
                type=channel_type,
                default_grade=grade,
                preset=preset,
                native_app_id=app_id,
            )
            audit(tenant=found, actor=None, action="channel.create", obj=channel)

        if channel_type == ChannelType.WECOM:
            self.stderr.write(
                "WeCom channel: set its corp ID, token and EncodingAESKey in the admin "
                "(Leads › Channels), then enter the URL as the app's callback URL in WeCom."
            )
        self.stdout.write(
            json.dumps(
                {
                    "key": channel.key,
                    "secret": channel.secret,
                    "url": public_url("hook", channel.key),
                    "form_url": public_url("lead_form", channel.key),
                },
                ensure_ascii=False,
            )
        )
