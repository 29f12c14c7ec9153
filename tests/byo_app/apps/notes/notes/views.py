import json

from django.db import DatabaseError, connection
from django.http import HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from notes.models import Note


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return JsonResponse({"status": "database unavailable", "error": type(exc).__name__}, status=503)
    return JsonResponse({"status": "ready"})


@csrf_exempt  # a JSON API: no cookies, no forms
def notes(request):
    if request.method == "GET":
        return JsonResponse([n.as_dict() for n in Note.objects.all()], safe=False)
    if request.method == "POST":
        try:
            text = str(json.loads(request.body)["text"])[:200]
        except (ValueError, KeyError, TypeError):
            return JsonResponse({"error": 'expected {"text": "..."}'}, status=400)
        return JsonResponse(Note.objects.create(text=text).as_dict(), status=201)
    return HttpResponseNotAllowed(["GET", "POST"])
