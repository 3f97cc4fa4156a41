import django_filters
import django_tables2 as tables
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.formatting import format_date
from crm.models import Membership, Role


class MemberTable(tables.Table):
    username = tables.Column(
        accessor="user__username", verbose_name=_("username"), order_by="user__username"
    )
    name = tables.Column(
        accessor="user__last_name",
        verbose_name=_("name"),
        order_by=("user__last_name", "user__first_name"),
        empty_values=(),
    )
    role = tables.Column(verbose_name=_("role"))
    email = tables.Column(accessor="user__email", verbose_name=_("e-mail"))
    is_active = tables.BooleanColumn(verbose_name=_("active"))
    # A plain column rendered in Python: DateColumn compiles a template per cell.
    created_at = tables.Column(verbose_name=_("joined"), order_by=("created_at", "id"))

    class Meta:
        model = Membership
        fields = ["username", "name", "role", "email", "is_active", "created_at"]
        attrs = {"class": "table table-hover align-middle"}
        empty_text = _("No member matches these filters.")
        # Column names, not ORM paths: django-tables2 silently drops anything else.
        order_by = ("username",)

    def render_name(self, record):
        return record.user.get_full_name() or "—"

    def render_created_at(self, value):
        return format_date(value)


class MemberFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label=_("Search"))
    role = django_filters.ChoiceFilter(
        choices=Role.choices, label=_("role"), empty_label=_("All roles")
    )

    class Meta:
        model = Membership
        fields = ["q", "role"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(user__username__icontains=value)
            | Q(user__first_name__icontains=value)
            | Q(user__last_name__icontains=value)
        )
