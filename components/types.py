"""One type per concept, used by the stack config and the components alike.

A namespace name, an ACM certificate ARN, an IPv4 CIDR, an image reference, a Kubernetes
quantity: each is one `Annotated` type here with one validator and its JSON Schema (a
pattern, bounds, an example). The config models (`stacks/`) and the component Args
(`components/`) import the same type, so a value the config accepts is never refused by
a component, and the published schema flags in the editor what `pulumi up` would refuse.

Messages name the value and what is allowed, never the field: the caller's error
formatting says which key it was.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, Field

# --- Kubernetes names -----------------------------------------------------------------

# RFC 1123 label (Kubernetes namespaces, Services, container names): may start with a digit.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)


def dns_label_problem(value: str, max_length: int = 63) -> str | None:
    if len(value) <= max_length and _DNS_LABEL.fullmatch(value):
        return None
    return (f"{value!r} is not a DNS label (lowercase letters, digits and '-', starting and ending "
            f"with a letter or digit, at most {max_length} characters)")


@cache
def dns_label(max_length: int = 63) -> Any:
    """An RFC 1123 label of at most `max_length` characters."""
    def check(value: str) -> str:
        if problem := dns_label_problem(value, max_length):
            raise ValueError(problem)
        return value

    return Annotated[str, AfterValidator(check),
                     Field(json_schema_extra={"pattern": DNS_LABEL_PATTERN, "maxLength": max_length,
                                              "examples": ["orders"]})]


DnsLabel = dns_label(63)
# Namespaces are DNS labels (`kubectl create namespace 1st` works).
NamespaceName = DnsLabel

# --- environment variables and paths ------------------------------------------------

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_ENV_NAME = re.compile(ENV_NAME_PATTERN)


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name (letters, digits and '_', "
                         "not starting with a digit)")
    return value


EnvName = Annotated[str, AfterValidator(_env_name),
                    Field(json_schema_extra={"pattern": ENV_NAME_PATTERN, "examples": ["LOG_LEVEL"]})]

URL_PATH_PATTERN = r"^/[^\s]*$"


def _url_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value) or "://" in value:
        raise ValueError(f"{value!r} is not a URL path starting with '/' (e.g. '/readyz')")
    return value


UrlPath = Annotated[str, AfterValidator(_url_path),
                    Field(json_schema_extra={"pattern": URL_PATH_PATTERN, "examples": ["/readyz"]})]

ABSOLUTE_PATH_PATTERN = r"^/"


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path (e.g. '/tmp')")
    return value


AbsolutePath = Annotated[str, AfterValidator(_absolute_path),
                         Field(json_schema_extra={"pattern": ABSOLUTE_PATH_PATTERN, "examples": ["/tmp"]})]

# --- Kubernetes quantities ------------------------------------------------------------

QUANTITY_PATTERN = (r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_QUANTITY = re.compile(
    r"^(?P<num>\+?(?:\d+(?:\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$", re.ASCII)
_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}
# Kubernetes itself refuses quantities this large ("quantities must match the regular
# expression" aside, values past 2^63 milli-units overflow), so the kit does too.
_QUANTITY_MAX = Decimal(2**63) / 1000


def parse_quantity(value: str) -> Decimal:
    """A Kubernetes quantity ("250m", "1.5", "512Mi", "1e3") as a number of base units."""
    match = _QUANTITY.fullmatch(value)
    if not match:
        raise ValueError(value)
    suffix = match.group("suffix") or ""
    try:
        number = Decimal(match.group("num"))
        if suffix[:1] in {"e", "E"} and suffix not in _SUFFIX:
            exponent = int(suffix[1:])
            if abs(exponent) > 30:
                raise ValueError(value)
            return number * (Decimal(10) ** exponent)
    except InvalidOperation as exc:  # pragma: no cover (the regex admits only numbers)
        raise ValueError(value) from exc
    return number * _SUFFIX[suffix]


def _quantity(value: str) -> str:
    try:
        amount = parse_quantity(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 250m or 1 for CPU, "
                         "512Mi or 1Gi for memory and storage)") from None
    if amount <= 0:
        raise ValueError(f"must be above zero, got {value!r}")
    if amount > _QUANTITY_MAX:
        raise ValueError(f"{value!r} is larger than Kubernetes accepts")
    return value


Quantity = Annotated[str, AfterValidator(_quantity),
                     Field(json_schema_extra={"pattern": QUANTITY_PATTERN, "examples": ["512Mi"]})]

# --- container images -----------------------------------------------------------------

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_TAG = re.compile(r":([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")
# The image reference grammar (distribution/reference): an optional registry host[:port], then
# lowercase path components separated by '/', then a tag and/or a digest (the kit wants one).
_HOST_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_NAME_PATTERN = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]+)?/)?{_PATH_PART}(?:/{_PATH_PART})*"
IMAGE_PATTERN = rf"^{IMAGE_NAME_PATTERN}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?$"
_IMAGE = re.compile(IMAGE_PATTERN)


def has_digest(image: str) -> bool:
    return bool(_DIGEST.search(image))


def image_problem(image: str) -> str | None:
    """Why `image` can never be deployed (not a reference, no tag nor digest, or :latest), else None."""
    if "@" in image and not _DIGEST.search(image):
        return f"{image!r} has a malformed digest; use repo@sha256:<64 hex>"
    if not _IMAGE.fullmatch(image):
        return (f"{image!r} is not an image reference (registry/name:tag or registry/name@sha256:<64 hex>; "
                "lowercase name)")
    if _DIGEST.search(image):
        return None
    tag = _TAG.search(image.rsplit("/", 1)[-1])
    if not tag:
        return f"{image!r} has neither a tag nor a digest; pin a digest (repo@sha256:...) or, in dev, a tag"
    if tag.group(1) == "latest":
        return f"{image!r} uses the moving tag 'latest'; pin a digest (repo@sha256:...)"
    return None


def _image(value: str) -> str:
    if problem := image_problem(value):
        raise ValueError(problem)
    return value


ImageRef = Annotated[str, AfterValidator(_image), Field(json_schema_extra={
    "pattern": IMAGE_PATTERN,
    "examples": ["ghcr.io/acme/orders@sha256:4f2a9c0e5b7d1c3e8a6f0b2d4c6e8a0b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f"]})]

# --- networks -------------------------------------------------------------------------

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_CIDR_PATTERN = rf"^({_OCTET}\.){{3}}{_OCTET}/([0-9]|[12][0-9]|3[0-2])$"


def _ipv4_network(value: str) -> ipaddress.IPv4Network:
    if "/" not in value:
        # ipaddress reads a bare address as a /32; a CIDR says its prefix.
        raise ValueError(f"{value!r} is not an IPv4 CIDR: add the prefix length (e.g. {value}/32)")
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as exc:
        if "host bits" in str(exc):
            net = ipaddress.IPv4Network(value, strict=False)
            raise ValueError(f"{value!r} has host bits set; the network is {net}") from None
        raise ValueError(f"{value!r} is not an IPv4 CIDR (e.g. 10.0.0.0/16)") from None


def _ipv4_cidr(value: str) -> str:
    _ipv4_network(value)
    return value


Ipv4Cidr = Annotated[str, AfterValidator(_ipv4_cidr),
                     Field(json_schema_extra={"pattern": IPV4_CIDR_PATTERN, "examples": ["10.0.0.0/16"]})]


@cache
def allowlist_cidr(min_prefix: int = 1) -> Any:
    """An IPv4 CIDR that admits somebody in particular: never /0 (that is no allowlist), and at
    least /`min_prefix`."""
    def check(value: str) -> str:
        net = _ipv4_network(value)
        if net.prefixlen == 0:
            raise ValueError(f"{value!r} allows the whole internet; list your office, VPN or CI egress "
                             "ranges instead")
        if net.prefixlen < min_prefix:
            raise ValueError(f"must be /{min_prefix} or longer, got {value!r}")
        return value

    return Annotated[str, AfterValidator(check),
                     Field(json_schema_extra={"pattern": IPV4_CIDR_PATTERN, "examples": ["203.0.113.0/24"]})]


AllowlistCidr = allowlist_cidr(1)

# --- DNS and AWS identifiers ----------------------------------------------------------

HOSTNAME_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
DomainName = Annotated[str, Field(pattern=HOSTNAME_PATTERN, max_length=253, examples=["api.example.com"])]

ACM_ARN_PATTERN = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]+$"
AcmCertificateArn = Annotated[str, Field(
    pattern=ACM_ARN_PATTERN,
    examples=["arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"])]

AWS_REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$"
AwsRegion = Annotated[str, Field(pattern=AWS_REGION_PATTERN, examples=["eu-west-1"])]
HostedZoneId = Annotated[str, Field(pattern=r"^Z[A-Z0-9]{1,31}$", examples=["Z0123456789ABCDEFGHIJ"])]
SecurityGroupId = Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$", examples=["sg-0a1b2c3d4e5f60718"])]
VpcId = Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$", examples=["vpc-0abc1234"])]
SubnetId = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$", examples=["subnet-0abc1234"])]


def env_names_problem(names: list[str]) -> str | None:
    """For names passed outside a model (a component's `secrets=` keyword)."""
    bad = [n for n in names if not _ENV_NAME.fullmatch(n)]
    return f"{bad} are not environment variable names (letters, digits, '_')" if bad else None


# Kubernetes label keys and values (metadata.labels, label selectors): an optional DNS-subdomain
# prefix and a name of at most 63 characters; values of at most 63, possibly empty.
LABEL_KEY_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
LabelKey = Annotated[str, Field(pattern=LABEL_KEY_PATTERN, max_length=316, examples=["release"])]
LabelValue = Annotated[str, Field(pattern=LABEL_VALUE_PATTERN, max_length=63, examples=["kube-prometheus-stack"])]
