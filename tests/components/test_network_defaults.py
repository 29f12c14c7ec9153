"""Network: what a new VPC looks like in prod and dev, and what an existing one costs (nothing)."""

import json

from components.network import ExistingVpcArgs, Network, NewVpcArgs

SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"


def test_prod_vpc_spans_three_azs_with_a_nat_per_az(run):
    monitor = run(lambda: Network("net", NewVpcArgs()), stack="prod")

    subnets = monitor.all(SUBNET)
    assert len([s for s in subnets if "-public-" in s.name]) == 3
    assert len([s for s in subnets if "-private-" in s.name]) == 3
    assert len({s.inputs["availabilityZone"] for s in subnets}) == 3
    assert len(monitor.all(NAT)) == 3


def test_each_private_subnet_routes_through_the_nat_of_its_own_az(run):
    monitor = run(lambda: Network("net", NewVpcArgs()), stack="prod")

    nat_ids = {monitor.one(NAT, f"net-nat-{i}").id for i in range(3)}
    routes = {monitor.one("aws:ec2/routeTable:RouteTable", f"net-private-rt-{i}").inputs["routes"][0]["natGatewayId"]
              for i in range(3)}
    assert routes == nat_ids


def test_dev_vpc_uses_two_azs_and_a_single_nat(run):
    monitor = run(lambda: Network("net", NewVpcArgs(az_count=2, nat_gateways="single")), stack="dev")

    assert len(monitor.all(SUBNET)) == 4
    assert len(monitor.all(NAT)) == 1
    nat = monitor.one(NAT)
    assert {r.inputs["routes"][0]["natGatewayId"] for r in monitor.all("aws:ec2/routeTable:RouteTable")
            if "private" in r.name} == {nat.id}


def test_subnets_carry_the_tags_eks_load_balancing_selects_them_by(run):
    monitor = run(lambda: Network("net", NewVpcArgs()))

    subnets = monitor.all(SUBNET)
    assert len(subnets) == 6
    for subnet in subnets:
        if "-public-" in subnet.name:
            assert subnet.inputs["tags"]["kubernetes.io/role/elb"] == "1"
        else:
            assert subnet.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1"


def test_no_subnet_hands_out_public_ips_on_launch(run):
    monitor = run(lambda: Network("net", NewVpcArgs()))

    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in monitor.all(SUBNET))


def test_private_subnets_never_route_to_the_internet_gateway(run):
    monitor = run(lambda: Network("net", NewVpcArgs()))

    igw = monitor.one("aws:ec2/internetGateway:InternetGateway")
    private = [rt for rt in monitor.all("aws:ec2/routeTable:RouteTable") if "private" in rt.name]
    assert len(private) == 3, "one per AZ"
    for rt in private:
        assert rt.inputs["routes"] and all("gatewayId" not in r for r in rt.inputs["routes"]), rt.name
        assert igw.id not in str(rt.inputs), rt.name


def test_s3_gateway_endpoint_serves_every_route_table(run):
    monitor = run(lambda: Network("net", NewVpcArgs()))

    endpoint = monitor.one("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    assert endpoint.inputs["serviceName"] == "com.amazonaws.us-east-1.s3"
    assert len(endpoint.inputs["routeTableIds"]) == 4


def test_default_security_group_is_stripped_of_rules(run):
    monitor = run(lambda: Network("net", NewVpcArgs()))

    default = monitor.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default.inputs.get("ingress") and not default.inputs.get("egress")


def test_subnet_ranges_do_not_overlap(run):
    import ipaddress

    monitor = run(lambda: Network("net", NewVpcArgs(az_count=4)))

    nets = [ipaddress.IPv4Network(s.inputs["cidrBlock"]) for s in monitor.all(SUBNET)]
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    assert all(n.subnet_of(ipaddress.IPv4Network("10.0.0.0/16")) for n in nets)


def test_every_connection_is_flow_logged_to_a_log_group_with_a_retention(run):
    monitor = run(lambda: Network("net", NewVpcArgs()), stack="prod")

    group = monitor.one("aws:cloudwatch/logGroup:LogGroup", "net-flow-logs")
    assert group.inputs["retentionInDays"] == 90
    flow = monitor.one("aws:ec2/flowLog:FlowLog")
    assert flow.inputs["vpcId"] == monitor.one("aws:ec2/vpc:Vpc").id
    assert flow.inputs["trafficType"] == "ALL", "rejected connections matter as much as accepted ones"
    assert flow.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow.inputs["logDestination"] == group.state["arn"]


def test_the_flow_log_role_is_for_this_accounts_flow_logs_and_appends_to_one_log_group(run):
    monitor = run(lambda: Network("net", NewVpcArgs()), stack="prod")

    group_arn = monitor.one("aws:cloudwatch/logGroup:LogGroup", "net-flow-logs").state["arn"]
    [trust] = json.loads(monitor.one("aws:iam/role:Role", "net-flow-logs").inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"].endswith(":123456789012:vpc-flow-log/*")
    [grant] = json.loads(monitor.one("aws:iam/rolePolicy:RolePolicy", "net-flow-logs").inputs["policy"])["Statement"]
    assert grant["Resource"] == [group_arn, f"{group_arn}:*"]
    assert set(grant["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups",
                                    "logs:DescribeLogStreams"}
    assert monitor.one("aws:ec2/flowLog:FlowLog").inputs["iamRoleArn"] == \
        monitor.one("aws:iam/role:Role", "net-flow-logs").state["arn"]


def test_flow_logs_can_be_turned_off(run):
    monitor = run(lambda: Network("net", NewVpcArgs(flow_log_retention_days=None)))

    assert not monitor.all("aws:ec2/flowLog:FlowLog")
    assert not monitor.all("aws:cloudwatch/logGroup:LogGroup")


def test_existing_vpc_creates_nothing_and_passes_ids_through(run):
    args = ExistingVpcArgs(mode="existing", vpc_id="vpc-0abc12345",
                           public_subnet_ids=["subnet-0aaa11111", "subnet-0aaa22222"],
                           private_subnet_ids=["subnet-0bbb11111", "subnet-0bbb22222"])
    seen = {}

    def program():
        net = Network("net", args)
        net.private_subnet_ids.apply(lambda ids: seen.update(private=ids))

    monitor = run(program)

    assert [r.type for r in monitor.all()] == ["webstack:components:Network"]
    assert seen["private"] == ["subnet-0bbb11111", "subnet-0bbb22222"]
