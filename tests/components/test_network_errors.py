"""Network: bad config names the field and the value."""

import pytest
from pydantic import TypeAdapter, ValidationError

from components.network import ExistingVpcArgs, NetworkArgs, NewVpcArgs


def test_a_cidr_that_is_not_a_network_is_refused():
    with pytest.raises(ValidationError, match=r"cidr_block\n  Value error, '10\.0\.0\.1/16' has host bits set; the network is 10\.0\.0\.0/16"):
        NewVpcArgs(cidr_block="10.0.0.1/16")


def test_a_vpc_smaller_than_slash_20_is_refused():
    with pytest.raises(ValidationError, match=r"cidr_block\n  Value error, prefix must be /16\.\./20, got '10\.0\.0\.0/24'"):
        NewVpcArgs(cidr_block="10.0.0.0/24")


def test_a_single_az_is_refused():
    with pytest.raises(ValidationError, match="az_count"):
        NewVpcArgs(az_count=1)


def test_a_retention_cloudwatch_logs_does_not_offer_is_refused():
    with pytest.raises(ValidationError, match=r"flow_log_retention_days\n.*Input should be 7, 14, 30"):
        NewVpcArgs(flow_log_retention_days=10)


def test_unknown_keys_are_refused():
    with pytest.raises(ValidationError, match="nat_gateway"):
        NewVpcArgs(nat_gateway="single")


def test_existing_vpc_needs_two_private_subnets():
    with pytest.raises(ValidationError, match="private_subnet_ids"):
        ExistingVpcArgs(mode="existing", vpc_id="vpc-0abc12345", private_subnet_ids=["subnet-0bbb11111"])


def test_a_subnet_cannot_be_both_public_and_private():
    with pytest.raises(ValidationError, match=r"private_subnet_ids: \['subnet-0bbb11111'\] also listed"):
        ExistingVpcArgs(mode="existing", vpc_id="vpc-0abc12345", public_subnet_ids=["subnet-0bbb11111"],
                        private_subnet_ids=["subnet-0bbb11111", "subnet-0bbb22222"])


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValidationError, match="mode"):
        TypeAdapter(NetworkArgs).validate_python({"mode": "borrowed"})
