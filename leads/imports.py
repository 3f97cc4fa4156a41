from django.http import Http404


def import_upload(request):
    raise Http404


def import_batch(request, public_id):
    raise Http404
