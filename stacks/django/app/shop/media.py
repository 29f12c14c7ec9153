"""Uploads on a volume with links as private as presigned S3 URLs: the storage the shop uses
when it has no media bucket (the kit's uploads volume on a local cluster, a laptop).

Django's FileSystemStorage links a file as MEDIA_URL + its name: anyone who learns the link can
fetch it for as long as the file exists, and a web server in front must serve the whole folder.
Here `url()` returns `/media/<token>/<file name>` instead. The token carries the file's name and
the time it was signed (django.core.signing, keyed by SECRET_KEY, so every pod of the site
accepts it), and `serve` hands out the file only while the token is younger than
`expire_seconds`: the same contract as a presigned S3 GET, so the views that give out links (and
decide who gets one) are the same on both. Nothing else serves the folder: Nginx never mounts it.
"""

from __future__ import annotations

import mimetypes
import posixpath

from django.core import signing
from django.core.files.storage import FileSystemStorage, storages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.deconstruct import deconstructible
from django.views.decorators.http import require_safe

SALT = "shop.media"
# Served files are other people's bytes on this site's origin: the browser runs no script from
# them, submits no form, and frames nothing (an uploaded HTML or SVG stays inert).
SANDBOX = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


@deconstructible
class SignedFileSystemStorage(FileSystemStorage):
    """FileSystemStorage whose links work for `expire_seconds` and are served by `serve` below."""

    def __init__(self, *, expire_seconds: int = 300, **kwargs) -> None:
        super().__init__(**kwargs)
        self.expire_seconds = expire_seconds

    def url(self, name: str) -> str:
        token = signing.dumps(name, salt=SALT)
        return reverse("media", kwargs={"token": token, "filename": posixpath.basename(name)})


@require_safe
def serve(request: HttpRequest, token: str, filename: str) -> HttpResponse:
    """The file a fresh token names. An expired link is 403 (the page that gave it out gives a new
    one); a forged, altered or unknown one is 404 (nothing to learn from it)."""
    storage = storages["default"]
    if not isinstance(storage, SignedFileSystemStorage):
        raise Http404("uploads are not served by this app")
    try:
        name = signing.loads(token, salt=SALT, max_age=storage.expire_seconds)
    except signing.SignatureExpired:
        return HttpResponse("This link has expired.\n", status=403, content_type="text/plain")
    except signing.BadSignature:
        raise Http404("no such file") from None
    if not isinstance(name, str) or posixpath.basename(name) != filename:
        raise Http404("no such file")
    try:
        handle = storage.open(name, "rb")
    except (FileNotFoundError, IsADirectoryError):
        raise Http404("no such file") from None
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    response = FileResponse(handle, content_type=content_type, filename=filename)
    response["Content-Security-Policy"] = SANDBOX
    # The browser may keep it as long as the link lives; shared caches never.
    response["Cache-Control"] = f"private, max-age={storage.expire_seconds}"
    return response
