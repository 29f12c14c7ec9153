"""HTTP smoke checks from where verify runs (outside the allowlist, as a visitor is): the app's
health path answers 200 with security headers, a hashed static file comes back with a year-long
immutable cache and the CDN's security headers, and the admin path is refused (WAF: 403)."""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cli.verify.model import Check, Outcome, Problem, failed, passed, skipped
from cli.verify.storage import static_cdn_expected

if TYPE_CHECKING:
    from cli.verify.outputs import StackOutputs
    from cli.verify.run import Context

ONE_YEAR_S = 31_536_000
MAX_BODY_BYTES = 8 * 1024 * 1024
# Django's ManifestStaticFilesStorage writes this next to the files: name -> hashed name.
MANIFEST = "staticfiles.json"
HASHED_NAME = re.compile(r"\.[0-9a-f]{12}\.[A-Za-z0-9]+$")


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: dict[str, str]  # lowercase names; repeated headers joined with ", "
    body: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None  # a redirect is an answer to judge, not to follow


class Http:
    """GET without following redirects, cached per URL; TLS verified against the system's CAs
    (SSL_CERT_FILE names another bundle)."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(
            _NoRedirect, urllib.request.HTTPSHandler(context=ssl.create_default_context()))
        self._answers: dict[str, Response | Problem] = {}

    def get(self, url: str) -> Response:
        if url not in self._answers:
            self._answers[url] = self._fetch(url)
        answer = self._answers[url]
        if isinstance(answer, Problem):
            raise Problem(answer.finding, answer.fix)
        return answer

    def _fetch(self, url: str) -> Response | Problem:
        request = urllib.request.Request(url, headers={"User-Agent": "webstack-verify"})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as reply:
                return Response(url, reply.status, _headers(reply.headers), reply.read(MAX_BODY_BYTES))
        except urllib.error.HTTPError as err:
            with err:
                return Response(url, err.code, _headers(err.headers), err.read(MAX_BODY_BYTES))
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            return Problem(f"could not reach {url}: {reason}",
                           "check the DNS name and that the load balancer or distribution is up; run verify from "
                           "a machine that can reach the service")


def _headers(message) -> dict[str, str]:  # noqa: ANN001 (an http.client.HTTPMessage)
    out: dict[str, str] = {}
    for name, value in message.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _directives(value: str) -> dict[str, str]:
    """Cache-Control / HSTS directives: `max-age=31536000; includeSubDomains` -> {max-age: ..., ...}."""
    out = {}
    for part in re.split(r"[;,]", value or ""):
        name, _, arg = part.strip().partition("=")
        if name:
            out[name.lower()] = arg.strip().strip('"')
    return out


def _max_age(value: str) -> int:
    try:
        return int(_directives(value).get("max-age", "0"))
    except ValueError:
        return 0


def security_header_problems(url: str, headers: Mapping[str, str]) -> list[str]:
    """What a browser needs to be told, and is not: HSTS for a year, no MIME sniffing, no framing,
    a referrer policy."""
    problems = []
    if not url.startswith("https://"):
        problems.append("served over plain HTTP")
    hsts = headers.get("strict-transport-security")
    if not hsts:
        problems.append("no Strict-Transport-Security")
    elif _max_age(hsts) < ONE_YEAR_S:
        problems.append(f"Strict-Transport-Security max-age {_max_age(hsts)} < {ONE_YEAR_S} (a year)")
    if headers.get("x-content-type-options", "").lower() != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    framing = headers.get("x-frame-options", "").upper() in ("DENY", "SAMEORIGIN") or \
        "frame-ancestors" in headers.get("content-security-policy", "").lower()
    if not framing:
        problems.append("no X-Frame-Options (DENY/SAMEORIGIN) or CSP frame-ancestors")
    referrer = headers.get("referrer-policy", "").lower()
    if not referrer or "unsafe-url" in referrer:
        problems.append("no Referrer-Policy" if not referrer else f"Referrer-Policy {referrer}")
    return problems


def health_outcome(response: Response) -> Outcome:
    if response.status == 200:
        return passed(f"GET {response.url}: 200")
    where = f" to {response.headers['location']}" if "location" in response.headers else ""
    return failed(f"GET {response.url}: {response.status}{where}",
                  "check the pods (`kubectl get pods -n <namespace>`), the ALB target health, and that "
                  "health_path is the app's readiness path")


def app_headers_outcome(response: Response) -> Outcome:
    problems = security_header_problems(response.url, response.headers)
    if problems:
        return failed(f"{response.url}: " + "; ".join(problems),
                      "the app sets them: Django's SecurityMiddleware with SECURE_HSTS_SECONDS = 31536000, "
                      "SECURE_PROXY_SSL_HEADER (the ALB ends TLS), X_FRAME_OPTIONS = 'DENY'; in FastAPI a "
                      "middleware that adds them")
    return passed("HSTS (a year), nosniff, framing refused, a referrer policy")


def static_headers_outcome(response: Response) -> Outcome:
    problems = security_header_problems(response.url, response.headers)
    if problems:
        return failed(f"{response.url}: " + "; ".join(problems),
                      "the kit's CloudFront response headers policy sets them (components/static_cdn.py): "
                      "`pulumi up --refresh`")
    return passed("HSTS (a year), nosniff, framing refused, a referrer policy")


def immutable_cache_outcome(response: Response) -> Outcome:
    if response.status != 200:
        return failed(f"GET {response.url}: {response.status}",
                      "run the collectstatic release Job again (or check the bucket policy admits the distribution)")
    cache = response.headers.get("cache-control", "")
    directives = _directives(cache)
    if "immutable" in directives and _max_age(cache) >= ONE_YEAR_S:
        return passed(f"{response.url}: Cache-Control {cache}")
    return failed(f"{response.url}: Cache-Control {cache or '(none)'}; a hashed file should be cached a year, "
                  "immutable",
                  "the kit's CloudFront response headers policy adds it unless the object has its own "
                  "Cache-Control: upload without one, or with 'public, max-age=31536000, immutable'")


def admin_outcome(response: Response) -> Outcome:
    if response.status == 403:
        return passed(f"GET {response.url}: 403 (refused outside the allowlist)")
    return failed(f"GET {response.url}: {response.status}; the admin path answered a source outside the allowlist",
                  "if this machine is inside admin_allowed_cidrs, run verify from outside; otherwise check the "
                  "WAF's admin-allowlist rule is on the ALB (alb.waf)")


def manifest_asset(body: bytes) -> str | None:
    """A hashed file named in staticfiles.json (the first, sorted), or None."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    paths = doc.get("paths") if isinstance(doc, dict) else None
    if not isinstance(paths, dict):
        return None
    hashed = sorted(str(v) for v in paths.values() if HASHED_NAME.search(str(v)))
    return hashed[0] if hashed else None


def _join(base: str, path: str) -> str:
    return f"{base.rstrip('/')}/{path.lstrip('/')}"


def _health(ctx: "Context") -> Response:
    return ctx.http.get(_join(ctx.outputs.text("url"), ctx.outputs.text("health_path")))


def static_asset(ctx: "Context") -> Response | Outcome:
    """The response for a hashed static file: --asset, or the first hashed name in staticfiles.json."""
    base = ctx.outputs.text("static_url")
    path = ctx.asset
    if not path:
        manifest = ctx.http.get(_join(base, MANIFEST))
        path = manifest_asset(manifest.body) if manifest.status == 200 else None
        if not path:
            return skipped(f"no hashed file named at {_join(base, MANIFEST)} ({manifest.status}): no file to test",
                           "run collectstatic with ManifestStaticFilesStorage, or name a file with --asset PATH")
    return ctx.http.get(_join(base, path))


def _check_static_asset(ctx: "Context") -> Outcome:
    response = static_asset(ctx)
    return response if isinstance(response, Outcome) else immutable_cache_outcome(response)


def _check_static_headers(ctx: "Context") -> Outcome:
    response = static_asset(ctx)
    return response if isinstance(response, Outcome) else static_headers_outcome(response)


def public_url(outputs: "StackOutputs") -> str | None:
    url = outputs.text("url")
    if ".svc.cluster.local" in url:
        return "the service has no public URL (cluster-internal): give it app.domain and app.certificate_arn"
    return None


CHECKS = [
    Check("http.health", "the health path answers 200", ("url", "health_path"),
          lambda ctx: health_outcome(_health(ctx)), aws=False, applies=public_url),
    Check("http.security-headers", "the app sends HSTS, nosniff, framing and referrer policies over HTTPS",
          ("url", "health_path"), lambda ctx: app_headers_outcome(_health(ctx)), aws=False, applies=public_url),
    Check("http.static-asset", "a hashed static file is cached a year, immutable", ("static_url",),
          _check_static_asset, aws=False, applies=static_cdn_expected),
    Check("http.static-headers", "static files come with the CDN's security headers", ("static_url",),
          _check_static_headers, aws=False, applies=static_cdn_expected),
    Check("http.admin-refused", "the admin path is refused (403) outside the allowlist", ("url", "admin_path"),
          lambda ctx: admin_outcome(ctx.http.get(_join(ctx.outputs.text("url"), ctx.outputs.text("admin_path")))),
          aws=False, applies=public_url),
]
