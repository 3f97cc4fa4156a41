from django.contrib.auth.decorators import login_not_required
from django.http import Http404


@login_not_required
def lead_form(request, key):
    raise Http404


@login_not_required
def lead_form_qr(request, key, fmt):
    raise Http404
