"""VPC with public and private subnets over several AZs, or an existing VPC by id."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal, Union

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.naming import IAM_NAME_PREFIX_MAX, LogRetentionDays, service_trust_policy, stack_prefix
from components.pod_identity import Statement, policy_document
from components.types import Ipv4Cidr, SubnetId, VpcId

TYPE = "webstack:components:Network"

# EKS load balancing (Auto Mode and the AWS Load Balancer Controller) picks subnets by
# these tags: internet-facing ALBs/NLBs go to `elb`, internal ones to `internal-elb`.
PUBLIC_SUBNET_TAGS = {"kubernetes.io/role/elb": "1"}
PRIVATE_SUBNET_TAGS = {"kubernetes.io/role/internal-elb": "1"}


class NewVpcArgs(BaseModel):
    """Create a VPC: private subnets for nodes, pods and databases; public ones for load balancers and NAT."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["create"] = "create"
    cidr_block: Ipv4Cidr = Field("10.0.0.0/16", description="VPC IPv4 range, CIDR /16 to /20. Pods take VPC IPs on EKS, so size for pods, not nodes.")
    az_count: int = Field(3, ge=2, le=4, description="Availability zones to spread subnets over (count). Dev: 2.")
    nat_gateways: Literal["one_per_az", "single"] = Field(
        "one_per_az",
        description="NAT gateways: one per AZ survives an AZ outage; 'single' saves ~32 USD/month each (dev).")
    flow_log_retention_days: LogRetentionDays | None = Field(
        90, description="Days VPC flow logs (every accepted and rejected connection) stay in CloudWatch Logs; "
        "null: no flow logs. Dev: 14.")

    @field_validator("cidr_block")
    @classmethod
    def _cidr(cls, value: str) -> str:
        if not 16 <= ipaddress.IPv4Network(value).prefixlen <= 20:
            raise ValueError(f"prefix must be /16../20, got {value!r}")
        return value


class ExistingVpcArgs(BaseModel):
    """Use a VPC a platform team manages: the kit creates nothing in it but its own resources."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["existing"]
    vpc_id: VpcId = Field(description="Existing VPC id, e.g. 'vpc-0abc1234'.")
    public_subnet_ids: list[SubnetId] = Field(
        default_factory=list,
        description="Subnets for internet-facing load balancers (tagged kubernetes.io/role/elb=1 by their owner).")
    private_subnet_ids: list[SubnetId] = Field(
        min_length=2, description="Subnets in at least 2 AZs for nodes, pods and the database.")

    @model_validator(mode="after")
    def _distinct(self) -> "ExistingVpcArgs":
        both = sorted(set(self.public_subnet_ids) & set(self.private_subnet_ids))
        if both:
            raise ValueError(f"private_subnet_ids: {both} also listed in public_subnet_ids; a subnet is one or the other")
        return self


NetworkArgs = Annotated[Union[NewVpcArgs, ExistingVpcArgs], Field(discriminator="mode")]


def subnet_cidrs(cidr_block: str, az_count: int) -> tuple[list[str], list[str]]:
    """(private, public) CIDRs: private take the lower half in /(n+3) blocks, public /(n+6) blocks in the upper half."""
    net = ipaddress.IPv4Network(cidr_block)
    private = list(net.subnets(new_prefix=net.prefixlen + 3))[:az_count]
    public = list(net.subnets(new_prefix=net.prefixlen + 6))[32:32 + az_count]
    return [str(c) for c in private], [str(c) for c in public]


class Network(pulumi.ComponentResource):
    """VPC over N AZs: nodes and databases in private subnets behind NAT, only load balancers public."""

    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NewVpcArgs | ExistingVpcArgs, *,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        if isinstance(args, ExistingVpcArgs):
            self.vpc_id = pulumi.Output.from_input(args.vpc_id)
            self.public_subnet_ids = pulumi.Output.from_input(list(args.public_subnet_ids))
            self.private_subnet_ids = pulumi.Output.from_input(list(args.private_subnet_ids))
        else:
            self._create(name, args)
        self.register_outputs({"vpc_id": self.vpc_id, "public_subnet_ids": self.public_subnet_ids,
                               "private_subnet_ids": self.private_subnet_ids})

    def _create(self, name: str, args: NewVpcArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        # Skip Local/Wavelength zones: EKS and RDS are not offered there.
        azs = aws.get_availability_zones_output(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}], opts=invoke).names
        region = aws.get_region_output(opts=invoke).region

        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr_block, enable_dns_hostnames=True,
                          enable_dns_support=True, tags={"Name": f"{name}-vpc"}, opts=child)
        # The default security group allows all traffic between its members; strip its
        # rules so nothing can fall back on it by accident.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, opts=child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{name}-igw"}, opts=child)

        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags={"Name": f"{name}-public"}, opts=child)

        private_cidrs, public_cidrs = subnet_cidrs(args.cidr_block, args.az_count)
        public, private, nats, private_rts = [], [], [], []
        for i in range(args.az_count):
            az = azs[i]
            # Only load balancers and NAT live here, and they get their own public IPs:
            # nothing launched into these subnets should get one by default.
            pub = aws.ec2.Subnet(f"{name}-public-{i}", vpc_id=vpc.id, cidr_block=public_cidrs[i],
                                 availability_zone=az, map_public_ip_on_launch=False,
                                 tags={"Name": f"{name}-public-{i}", **PUBLIC_SUBNET_TAGS}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-{i}", subnet_id=pub.id, route_table_id=public_rt.id,
                                          opts=child)
            public.append(pub)
            if args.nat_gateways == "one_per_az" or i == 0:
                eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", tags={"Name": f"{name}-nat-{i}"}, opts=child)
                nats.append(aws.ec2.NatGateway(f"{name}-nat-{i}", allocation_id=eip.id, subnet_id=pub.id,
                                               tags={"Name": f"{name}-nat-{i}"},
                                               opts=pulumi.ResourceOptions(parent=self, depends_on=[igw])))
            nat = nats[i] if args.nat_gateways == "one_per_az" else nats[0]
            priv = aws.ec2.Subnet(f"{name}-private-{i}", vpc_id=vpc.id, cidr_block=private_cidrs[i],
                                  availability_zone=az, map_public_ip_on_launch=False,
                                  tags={"Name": f"{name}-private-{i}", **PRIVATE_SUBNET_TAGS}, opts=child)
            rt = aws.ec2.RouteTable(f"{name}-private-rt-{i}", vpc_id=vpc.id,
                                    routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                                    tags={"Name": f"{name}-private-{i}"}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{i}", subnet_id=priv.id, route_table_id=rt.id,
                                          opts=child)
            private.append(priv)
            private_rts.append(rt)

        # S3 traffic (image layers from ECR, static files, backups) skips NAT: cheaper, and
        # it never leaves the AWS network.
        aws.ec2.VpcEndpoint(f"{name}-s3", vpc_id=vpc.id, vpc_endpoint_type="Gateway",
                            service_name=pulumi.Output.concat("com.amazonaws.", region, ".s3"),
                            route_table_ids=[rt.id for rt in private_rts] + [public_rt.id],
                            tags={"Name": f"{name}-s3"}, opts=child)

        if args.flow_log_retention_days:
            self._flow_logs(name, vpc, args.flow_log_retention_days)

        self.vpc_id = vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, retention_days: int) -> None:
        """Every connection accepted or rejected in the VPC, for incident response: who talked to
        the database, what a compromised pod reached. Written by the VPC service through a role
        that may only append to this one log group."""
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        region = aws.get_region_output(opts=invoke).region
        group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", retention_in_days=retention_days, opts=child)
        trust = service_trust_policy("vpc-flow-logs.amazonaws.com", account, source_arn=pulumi.Output.format(
            "arn:{0}:ec2:{1}:{2}:vpc-flow-log/*", partition, region, account))
        role = aws.iam.Role(f"{name}-flow-logs", name_prefix=stack_prefix(f"{name}-flow-logs",
                                                                          max_length=IAM_NAME_PREFIX_MAX),
                            assume_role_policy=trust, description="VPC flow logs delivery", opts=child)
        policy = aws.iam.RolePolicy(f"{name}-flow-logs", role=role.id, policy=policy_document([Statement(
            sid="DeliverFlowLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups",
                     "logs:DescribeLogStreams"],
            resources=[group.arn, pulumi.Output.concat(group.arn, ":*")])]), opts=child)
        aws.ec2.FlowLog(f"{name}-flow-log", vpc_id=vpc.id, traffic_type="ALL",
                        log_destination_type="cloud-watch-logs", log_destination=group.arn,
                        iam_role_arn=role.arn, tags={"Name": f"{name}-flow-log"},
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))
