"""The product list, and uploads: a signed-in user posts a file and gets back a link to it that
works for a few minutes (a presigned S3 URL, or one the shop signs: shop/media.py).

The uploads API, called with the session cookie and Django's CSRF token (a browser's script, or
curl with a cookie jar): GET /uploads/ sets the `csrftoken` cookie and lists your uploads; POST
/uploads/ (multipart, field `file`, header X-CSRFToken) stores one and answers 201 with its link;
GET /uploads/<id> redirects to a fresh link, for the owner only. Links are handed out per
request, to their owner, so who may read a file is decided here, each time, not by whoever
once saw a URL.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods, require_safe
from django.views.generic import ListView

from catalog.models import Product, Upload

log = logging.getLogger("shop.uploads")

# What may be uploaded, by extension, and the type it is stored and served with. The client's
# own Content-Type is ignored: it could call a page of HTML an image.
UPLOAD_TYPES = {".gif": "image/gif", ".jpeg": "image/jpeg", ".jpg": "image/jpeg", ".pdf": "application/pdf",
                ".png": "image/png", ".txt": "text/plain", ".webp": "image/webp"}


class ProductListView(ListView):
    """The products, 50 a page (?page=2...)."""

    model = Product
    paginate_by = 50
    template_name = "catalog/product_list.html"


def _refused(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _described(upload: Upload) -> dict:
    """An upload as the API shows it, with a link that works for MEDIA_URL_EXPIRY_SECONDS."""
    return {"id": upload.pk, "name": os.path.basename(upload.file.name), "content_type": upload.content_type,
            "size": upload.size, "created": upload.created.isoformat(), "url": upload.file.url,
            "url_expires_in": settings.MEDIA_URL_EXPIRY_SECONDS}


@ensure_csrf_cookie
@require_http_methods(["GET", "HEAD", "POST"])
def uploads(request: HttpRequest) -> HttpResponse:
    """GET: your uploads, newest first (50). POST: store the multipart field `file`."""
    if not request.user.is_authenticated:
        return _refused(403, f"sign in first: {reverse('login')}")
    if request.method != "POST":
        return JsonResponse({"uploads": [_described(u) for u in request.user.uploads.all()[:50]]})
    file = request.FILES.get("file")
    if file is None:
        return _refused(400, "expected a multipart/form-data body with the file in the field 'file'")
    ext = os.path.splitext(file.name or "")[1].lower()
    if ext not in UPLOAD_TYPES:
        return _refused(400, f"{ext or 'no extension'}: not accepted; upload one of {', '.join(sorted(UPLOAD_TYPES))}")
    if file.size == 0:
        return _refused(400, "the file is empty")
    if file.size > settings.MAX_UPLOAD_BYTES:
        # Behind the kit's Nginx this never runs: Nginx refuses the body first (413), at the same limit.
        return _refused(413, f"larger than {settings.MAX_UPLOAD_MB} MiB")
    file.content_type = UPLOAD_TYPES[ext]  # what the storage stores it as (S3's Content-Type)
    upload = Upload.objects.create(owner=request.user, file=file, content_type=file.content_type, size=file.size)
    log.info("upload stored", extra={"username": request.user.get_username(), "upload_id": upload.pk,
                                     "size": upload.size, "content_type": upload.content_type})
    response = JsonResponse(_described(upload), status=201)
    response["Location"] = reverse("upload", kwargs={"pk": upload.pk})
    return response


@require_safe
def upload(request: HttpRequest, pk: int) -> HttpResponse:
    """A fresh link to one of your uploads (302). Someone else's is a 404: no hint that it exists."""
    if not request.user.is_authenticated:
        return _refused(403, f"sign in first: {reverse('login')}")
    found = get_object_or_404(Upload, pk=pk, owner=request.user)
    response = HttpResponseRedirect(found.file.url)
    response["Cache-Control"] = "private, no-store"  # the link inside expires; never replay this answer
    return response
