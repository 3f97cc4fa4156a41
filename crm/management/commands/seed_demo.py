"""Load the demo tenant: `python manage.py seed_demo` (idempotent)."""

from importlib import import_module, util

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from crm import demo
from crm.tenancy import tenant_context

# In dependency order: each part may use what the earlier ones made.
APP_PARTS = ["customers", "leads", "opportunities", "service_feedback", "health"]


class Command(BaseCommand):
    help = "Create (or complete) the demo tenants, users and each app's demo data."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help=f"Set every demo user's password back to {settings.DEMO_PASSWORD}.",
        )

    def handle(self, *args, reset_passwords=False, **options):
        with transaction.atomic():
            world = demo.seed(reset_passwords=reset_passwords)
        for app in APP_PARTS:
            if util.find_spec(f"{app}.demo") is None:
                continue
            with tenant_context(world.demo):
                import_module(f"{app}.demo").seed(world=world, stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"demo tenants ready: {world.demo.slug} ({len(world.memberships)} users), "
                f"{world.acme.slug}; password {settings.DEMO_PASSWORD}"
            )
        )
