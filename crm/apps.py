from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from django.core import checks

        from crm import (
            audit,
            exports,
            keys,
            levels,
            log_retention,
            metric_checks,
            metric_rows,
            navigation,
            notify,
            process,
            rls,
            schedules,
        )

        # Once per migrate run, after every app's tables exist: the tenant tables' keys
        # (tenant_id first), row-level security and the app role's grants, then the
        # periodic jobs that are missing.
        post_migrate.connect(keys.on_post_migrate, sender=self, dispatch_uid="crm.keys")
        post_migrate.connect(rls.on_post_migrate, sender=self, dispatch_uid="crm.rls")
        post_migrate.connect(schedules.on_post_migrate, sender=self, dispatch_uid="crm.schedules")
        audit.register_defaults()
        navigation.register_defaults()
        notify.register_defaults()
        exports.register_defaults()
        metric_checks.register()
        levels.register_defaults()
        # A figure's rows (crm.metric_rows) are a background export source when long.
        metric_rows.register()
        process.register()  # the process report's menu entry, the weekly diagnosis event
        # EVENT_LOG_DAYS shorter than the apps read the event log: raised, said at start-up.
        checks.register(log_retention.check_settings)


class CrmAdminConfig(AdminConfig):
    default_site = "crm.admin_site.TenantAdminSite"
