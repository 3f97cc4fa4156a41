from crm import navigation


def shell(request):
    """What the base layout needs: tenant, membership, the switcher and the menu."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_tenant": getattr(request, "tenant", None),
        "current_membership": getattr(request, "membership", None),
        "user_memberships": getattr(request, "memberships", []),
        "nav_entries": navigation.navbar_for(request),
    }
