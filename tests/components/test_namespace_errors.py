"""Namespace: settings that cannot work are refused with the field and the value."""

import pytest
from pydantic import ValidationError

from components.namespace import NamespaceArgs


def test_a_namespace_name_that_is_not_a_dns_label_is_refused():
    with pytest.raises(ValidationError, match=r"namespace_name\n  Value error, 'Shop_Prod' is not a DNS label"):
        NamespaceArgs(namespace_name="Shop_Prod")


def test_a_cidr_that_is_not_a_cidr_is_refused():
    with pytest.raises(ValidationError, match=r"database_cidrs\.0\n  Value error, '10\.0\.0\.0' is not an IPv4 CIDR: add the prefix length"):
        NamespaceArgs(database_cidrs=["10.0.0.0"])


def test_an_app_port_outside_the_tcp_range_is_refused():
    with pytest.raises(ValidationError, match=r"app_ports: \[70000\] are not TCP ports"):
        NamespaceArgs(app_ports=[70000])


def test_an_unknown_key_is_refused_not_ignored():
    with pytest.raises(ValidationError, match="monitoring_namspace"):
        NamespaceArgs(monitoring_namspace="prom")
