from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from crm import audit, navigation, notify, rls

        # Once per migrate run, after every app's tables exist.
        post_migrate.connect(rls.on_post_migrate, sender=self, dispatch_uid="crm.rls")
        audit.register_defaults()
        navigation.register_defaults()
        notify.register_defaults()


class CrmAdminConfig(AdminConfig):
    default_site = "crm.admin_site.TenantAdminSite"
