from django.http import Http404


def lead_list(request):
    raise Http404


def lead_detail(request, public_id):
    raise Http404
