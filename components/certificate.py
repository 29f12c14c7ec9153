"""DNS-validated ACM certificates and alias records in a Route 53 zone the user owns.

Functions, not a component: their resources keep the names and parent of the component that
calls them (`f"{name}-cert"` under a StaticCdn or a stack), so moving the code here replaced
nothing. What must exist first: the hosted zone, delegated for the domain (ACM validates by
resolving the record publicly; until it resolves, CertificateValidation waits, up to 75 min).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws


def dns_validated_certificate(name: str, domain: str, zone_id: str, *, opts: pulumi.ResourceOptions,
                              region: str | None = None) -> pulumi.Output[str]:
    """An ACM certificate for `domain`, validated by a record in `zone_id`. The ARN resolves only once
    ACM has issued it, so a listener or distribution using it never refers to a pending one.
    `region`: where the certificate lives (CloudFront takes only us-east-1); default the provider's."""
    where = {"region": region} if region else {}
    cert = aws.acm.Certificate(f"{name}-cert", domain_name=domain, validation_method="DNS", opts=opts, **where)
    option = cert.domain_validation_options[0]
    record = aws.route53.Record(
        f"{name}-cert-validation", zone_id=zone_id, name=option.resource_record_name,
        type=option.resource_record_type, records=[option.resource_record_value], ttl=300,
        allow_overwrite=True, opts=opts)
    validation = aws.acm.CertificateValidation(
        f"{name}-cert", certificate_arn=cert.arn, validation_record_fqdns=[record.fqdn], opts=opts, **where)
    return validation.certificate_arn


def alias_records(name: str, zone_id: str, domain: str, *, target_name: pulumi.Input[str],
                  target_zone_id: pulumi.Input[str], types: Sequence[str] = ("A", "AAAA"),
                  evaluate_target_health: bool = False, opts: pulumi.ResourceOptions) -> None:
    """`domain` in `zone_id` as an alias of a load balancer or distribution (no per-query charge)."""
    for rtype in types:
        aws.route53.Record(
            f"{name}-{rtype.lower()}", zone_id=zone_id, name=domain, type=rtype,
            aliases=[{"name": target_name, "zone_id": target_zone_id,
                      "evaluate_target_health": evaluate_target_health}], opts=opts)
