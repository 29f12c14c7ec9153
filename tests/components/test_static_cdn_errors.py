"""StaticCdn and its WAF: bad config names the field and the value."""

import pytest
from pydantic import ValidationError

from components.static_cdn import StaticCdnArgs
from components.waf import WafArgs


def test_a_domain_needs_a_zone_or_a_certificate():
    with pytest.raises(ValidationError, match="domain_name: 'static.example.com' needs exactly one of hosted_zone_id"):
        StaticCdnArgs(domain_name="static.example.com")


def test_a_zone_without_a_domain_is_refused():
    with pytest.raises(ValidationError, match="hosted_zone_id: only used with domain_name"):
        StaticCdnArgs(hosted_zone_id="Z0123456789ABC")


def test_a_certificate_outside_us_east_1_is_refused():
    with pytest.raises(ValidationError, match="certificate_arn"):
        StaticCdnArgs(domain_name="static.example.com",
                      certificate_arn="arn:aws:acm:eu-west-1:123456789012:certificate/abc-123")


def test_an_uppercase_or_malformed_domain_is_refused():
    with pytest.raises(ValidationError, match="domain_name"):
        StaticCdnArgs(domain_name="https://Static.example.com", hosted_zone_id="Z0123456789ABC")


def test_an_unknown_price_class_is_refused():
    with pytest.raises(ValidationError, match="price_class"):
        StaticCdnArgs(price_class="PriceClass_50")


def test_an_admin_allowlist_open_to_everyone_is_refused():
    with pytest.raises(ValidationError, match=r"admin_allowed_cidrs\.0\n  Value error, '0\.0\.0\.0/0' allows the whole internet"):
        WafArgs(admin_allowed_cidrs=["0.0.0.0/0"])


def test_an_admin_path_not_starting_with_a_slash_is_refused():
    with pytest.raises(ValidationError, match="admin_path"):
        WafArgs(admin_path="admin/")
