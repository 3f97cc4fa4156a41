"""Load the demo tenant: `python manage.py seed_demo` (idempotent)."""

from importlib import import_module, util
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from crm import demo, process
from crm.tenancy import tenant_context


def app_parts() -> list[str]:
    """The project's own apps (the packages at its root) after the kernel, in
    INSTALLED_APPS order, which is their dependency order: each app's demo part may use
    what the earlier ones made."""
    base = Path(settings.BASE_DIR).resolve()
    return [
        config.name
        for config in apps.get_app_configs()
        if config.name != "crm" and Path(config.path).resolve().parent == base
    ]


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
        for app in app_parts():
            if util.find_spec(f"{app}.demo") is None:
                continue
            with tenant_context(world.demo):
                import_module(f"{app}.demo").seed(world=world, stdout=self.stdout)
        with tenant_context(world.demo):
            # Last week's diagnoses, from every app's figures (crm.process).
            written = process.seed_demo(world.demo)
        self.stdout.write(f"process: {written} weekly diagnoses of last week")
        # The water levels read every app's rows: recorded once all the stories are told.
        with tenant_context(world.demo):
            demo.seed_levels(world=world, stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"demo tenants ready: {world.demo.slug} ({len(world.memberships)} users), "
                f"{world.acme.slug}; password {settings.DEMO_PASSWORD}"
            )
        )
