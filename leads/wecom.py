from django.http import HttpResponse


def callback(request, channel):
    return HttpResponse(status=501)
