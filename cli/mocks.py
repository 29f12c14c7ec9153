"""The Pulumi SDK's mock engine, made realistic and recording.

Offline render and the tests both run the real program against these mocks.
Outputs are derived from names (ids, ARNs, endpoints), never random, so the
program follows its real code paths and two runs give identical results.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
AZS = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]

# Signature keys of Pulumi's wire format (sdk/go/common/resource/sig).
_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

SECRET_MARK = "[secret]"
UNKNOWN_MARK = "[unknown]"


def digest(*parts: str, length: int = 8) -> str:
    """A short, stable hex digest of `parts` (stands in for random suffixes)."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@dataclass
class Registration:
    """One resource as the program registered it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    dependencies: list[str]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    aliases: list[str]
    replace_on_changes: list[str]
    inputs: dict[str, Any]  # secrets replaced by SECRET_MARK
    plain_inputs: dict[str, Any] = field(repr=False, default_factory=dict)
    provider: str | None = None  # "<provider urn>::<provider id>", custom resources only
    id: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


def _wire_to_plain(value: Any, *, reveal: bool) -> Any:
    """Turns a wire-format value into JSON-able data; secrets masked unless `reveal`."""
    if isinstance(value, dict):
        sig = value.get(_SIG)
        if sig == _SECRET_SIG:
            return _wire_to_plain(value.get("value"), reveal=reveal) if reveal else SECRET_MARK
        if sig == _RESOURCE_SIG:
            return value.get("urn")
        if sig == _OUTPUT_SIG:
            if value.get("secret") and not reveal:
                return SECRET_MARK
            return _wire_to_plain(value.get("value", UNKNOWN_MARK), reveal=reveal)
        return {k: _wire_to_plain(v, reveal=reveal) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_wire_to_plain(v, reveal=reveal) for v in value]
    if value == _UNKNOWN:
        return UNKNOWN_MARK
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class RecordingMonitor(MockMonitor):
    """A MockMonitor that also keeps what new_resource never sees: parent,
    dependencies, provider, protect, retain_on_delete, aliases, and which inputs are secret."""

    def __init__(self, mocks: "WebstackMocks") -> None:
        super().__init__(mocks)
        self.registrations: dict[str, Registration] = {}
        self.order: list[str] = []

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        wire = json_format.MessageToDict(request.object)
        urn = response.urn
        reg = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=request.custom,
            parent=request.parent or None,
            dependencies=sorted(set(request.dependencies)),
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            delete_before_replace=bool(request.deleteBeforeReplace),
            aliases=sorted(
                [a.urn for a in request.aliases if a.urn]
                + [_alias_spec(a.spec) for a in request.aliases if not a.urn]
            ),
            replace_on_changes=list(request.replaceOnChanges),
            inputs=_wire_to_plain(wire, reveal=False),
            plain_inputs=_wire_to_plain(wire, reveal=True),
            provider=request.provider or None,
            id=response.id or None,
        )
        reg.state = self.resources[urn].state
        if urn not in self.registrations:
            self.order.append(urn)
        self.registrations[urn] = reg
        return response

    def RegisterResourceOutputs(self, request):  # noqa: N802
        if request.urn in self.registrations:
            wire = json_format.MessageToDict(request.outputs)
            self.registrations[request.urn].outputs = _wire_to_plain(wire, reveal=False)
        return super().RegisterResourceOutputs(request)

    # Lookups used by tests -------------------------------------------------
    def all(self, type_: str | None = None) -> list[Registration]:
        regs = [self.registrations[u] for u in self.order]
        return [r for r in regs if type_ is None or r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Registration:
        found = [r for r in self.all(type_) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.all(type_)]
            raise AssertionError(f"expected one {type_} named {name!r}, found {names}")
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return self.registrations[urn]


def _alias_spec(spec: Any) -> str:
    parts = [f"name={spec.name}"] if spec.name else []
    if spec.type:
        parts.append(f"type={spec.type}")
    if spec.parentUrn:
        parts.append(f"parent={spec.parentUrn}")
    if spec.noParent:
        parts.append("noParent")
    return "alias(" + ", ".join(parts) + ")"


CLUSTER_SCOPED = {"kubernetes:core/v1:Namespace", "kubernetes:networking.k8s.io/v1:IngressClass",
                  "kubernetes:eks.amazonaws.com/v1:IngressClassParams", "kubernetes:storage.k8s.io/v1:StorageClass"}


class WebstackMocks(pulumi.runtime.Mocks):
    """Deterministic, realistic provider outputs: what AWS and Kubernetes would answer."""

    @property
    def region(self) -> str:
        """The stack's `aws:region`, as the AWS provider would use it (the default us-east-1)."""
        from pulumi.runtime.config import get_config

        return get_config("aws:region") or REGION

    # Resource outputs ------------------------------------------------------
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        typ, name, inputs = args.typ, args.name, dict(args.inputs)
        pkg = typ.split(":", 1)[0]
        if pkg == "kubernetes":
            rid, state = self._kubernetes(typ, name, inputs)
        elif pkg == "aws":
            rid, state = self._aws(typ, name, inputs)
        elif pkg == "pulumi" and typ == "pulumi:providers:kubernetes":
            rid, state = f"{name}-provider-id", inputs
        elif typ == "pulumi:pulumi:StackReference":
            rid, state = self._stack_reference(inputs.get("name") or name)
        elif typ == "random:index/randomId:RandomId":
            rid, state = _random_id(typ, name, inputs)
        elif typ == "random:index/randomPassword:RandomPassword":
            # `result` is what callers read (a secret in the provider's schema); derived, never random.
            rid, state = "none", {**inputs, "result": digest(typ, name, length=int(inputs.get("length") or 16))}
        else:
            rid, state = f"{name}-{digest(typ, name)}", inputs
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": AZS, "zoneIds": [f"use1-az{i + 1}" for i in range(len(AZS))],
                    "id": self.region}, []
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci",
                    "userId": "AIDAMOCK", "id": ACCOUNT_ID}, []
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if token == "aws:lb/getHostedZoneId:getHostedZoneId":
            # Route 53 zone of Application Load Balancers in us-east-1 (ELB service endpoints table).
            return {"id": "Z35SXDOTRQ7X7K"}, []
        if token == "aws:ec2/getVpc:getVpc":
            vpc = args.args.get("id") or "vpc-mock"
            return {"id": vpc, "cidrBlock": "10.0.0.0/16", "arn": f"arn:aws:ec2:{self.region}:{ACCOUNT_ID}:vpc/{vpc}",
                    "ownerId": ACCOUNT_ID, "state": "available"}
        return {}, []

    # A platform stack's outputs, as `pulumi.StackReference` reads them -------
    def _stack_reference(self, stack: str) -> tuple[str, dict]:
        import json

        cluster = f"platform-{digest(stack)}"
        kubeconfig = json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": cluster,
            "clusters": [{"name": cluster, "cluster": {
                "server": f"https://{digest(stack, length=32).upper()}.gr7.{self.region}.eks.amazonaws.com"}}],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
            "users": [{"name": cluster, "user": {}}]}, sort_keys=True)
        outputs = {"kubeconfig": kubeconfig, "clusterName": cluster,
                   "clusterSecurityGroupId": f"sg-{digest(stack, length=17)}"}
        return stack, {"name": stack, "outputs": outputs, "secretOutputNames": ["kubeconfig"]}

    # Kubernetes: the API server fills metadata and status ------------------
    def _kubernetes(self, typ: str, name: str, inputs: dict) -> tuple[str, dict]:
        if typ == "kubernetes:helm.sh/v3:Release":
            # A release is `<namespace>/<name>`; the provider reports its status.
            release = inputs.get("name") or f"{name}-{digest(typ, name)}"
            return f"{inputs.get('namespace')}/{release}", {**inputs, "name": release, "status": {
                "name": release, "namespace": inputs.get("namespace"), "status": "deployed",
                "chart": inputs.get("chart"), "version": inputs.get("version"), "revision": 1}}
        meta = dict(inputs.get("metadata") or {})
        # The cluster-scoped kinds the kit creates; every other object names its namespace
        # (one that does not fails below, rather than landing in "default").
        cluster_scoped = typ in CLUSTER_SCOPED
        if "name" not in meta:
            # pulumi-kubernetes auto-names as <logical name>-<8 random chars>.
            meta["name"] = f"{name}-{digest(typ, name)}"
        meta.setdefault("uid", _uuid(typ, name))
        state = {**inputs, "metadata": meta}
        if typ == "kubernetes:core/v1:Service":
            spec = dict(inputs.get("spec") or {})
            spec.setdefault("clusterIP", "10.100." + ".".join(str(int(digest(name)[i:i + 2], 16)) for i in (0, 2)))
            state["spec"] = spec
        if typ == "kubernetes:networking.k8s.io/v1:Ingress":
            host = f"k8s-{digest(name)}-{digest(typ, name)}.{self.region}.elb.amazonaws.com"
            state["status"] = {"loadBalancer": {"ingress": [{"hostname": host}]}}
        rid = meta["name"] if cluster_scoped else f"{meta['namespace']}/{meta['name']}"
        return rid, state

    # AWS: ids and ARNs derived from names ----------------------------------
    def _aws(self, typ: str, name: str, inputs: dict) -> tuple[str, dict]:
        module, kind = typ.split(":")[1].split("/")[0], typ.split(":")[-1]
        h = digest(typ, name, length=17)
        # pulumi-aws 7 resources may name their own region (CloudFront's WAF lives in us-east-1).
        acct, region = ACCOUNT_ID, inputs.get("region") or self.region
        state = dict(inputs)
        rid = f"{name}-{h[:8]}"
        prefixes = {"Vpc": "vpc", "Subnet": "subnet", "InternetGateway": "igw", "NatGateway": "nat",
                    "RouteTable": "rtb", "SecurityGroup": "sg", "Eip": "eipalloc",
                    "VpcEndpoint": "vpce"}
        if module == "ec2" and kind in prefixes:
            rid = f"{prefixes[kind]}-{h}"
            state["arn"] = f"arn:aws:ec2:{region}:{acct}:{prefixes[kind]}/{rid}"
            if kind == "Subnet":
                state.setdefault("availabilityZone", AZS[0])
        elif module == "s3" and kind == "Bucket":
            bucket = inputs.get("bucket") or (inputs["bucketPrefix"] + _unique_suffix(h) if inputs.get("bucketPrefix")
                                              else f"{name}-{h[:7]}")
            rid = bucket
            state.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}",
                         bucketDomainName=f"{bucket}.s3.amazonaws.com",
                         bucketRegionalDomainName=f"{bucket}.s3.{region}.amazonaws.com",
                         region=region)
        elif module == "eks" and kind == "Cluster":
            cname = inputs.get("name") or f"{name}-{h[:7]}"
            rid = cname
            state.update(
                name=cname,
                arn=f"arn:aws:eks:{region}:{acct}:cluster/{cname}",
                endpoint=f"https://{h.upper()[:32]}.gr7.{region}.eks.amazonaws.com",
                certificateAuthority={"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1PQ0sKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="},
                identities=[{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{h.upper()}"}]}],
                vpcConfig={**(inputs.get("vpcConfig") or {}), "clusterSecurityGroupId": f"sg-{h}"},
                version=inputs.get("version") or "1.33",
            )
        elif module == "rds" and kind == "Instance":
            ident = inputs.get("identifier") or (inputs["identifierPrefix"] + _unique_suffix(h)
                                                 if inputs.get("identifierPrefix") else f"{name}-{h[:7]}")
            rid = ident
            state.update(
                identifier=ident,
                arn=f"arn:aws:rds:{region}:{acct}:db:{ident}",
                address=f"{ident}.c{h[:12]}.{region}.rds.amazonaws.com",
                endpoint=f"{ident}.c{h[:12]}.{region}.rds.amazonaws.com:5432",
                port=inputs.get("port") or 5432,
                masterUserSecrets=[{
                    "secretArn": f"arn:aws:secretsmanager:{region}:{acct}:secret:rds!db-{_uuid(ident)}-{h[:6]}",
                    "secretStatus": "active", "kmsKeyId": f"arn:aws:kms:{region}:{acct}:key/{_uuid('kms', ident)}"}],
                resourceId=f"db-{h.upper()}",
            )
        elif module == "cloudfront" and kind == "Distribution":
            rid = "E" + h.upper()[:13]
            state.update(arn=f"arn:aws:cloudfront::{acct}:distribution/{rid}",
                         domainName=f"d{h[:13]}.cloudfront.net", hostedZoneId="Z2FDTNDATAQYW2")
        elif module == "kms" and kind == "Key":
            rid = _uuid("kms", name)
            state.update(arn=f"arn:aws:kms:{region}:{acct}:key/{rid}", keyId=rid)
        elif module == "iam":
            iam_name = inputs.get("name") or (inputs["namePrefix"] + _unique_suffix(h) if inputs.get("namePrefix")
                                              else f"{name}-{h[:7]}")
            rid = iam_name
            if kind == "Role":
                state.update(arn=f"arn:aws:iam::{acct}:role/{iam_name}", name=iam_name)
        elif module == "wafv2":
            wname = inputs.get("name") or f"{name}-{h[:7]}"
            rid = _uuid("waf", name)
            scope = "global" if inputs.get("scope") == "CLOUDFRONT" else "regional"
            res = {"WebAcl": "webacl", "IpSet": "ipset"}.get(kind, kind.lower())
            state.update(arn=f"arn:aws:wafv2:{region}:{acct}:{scope}/{res}/{wname}/{rid}", name=wname)
        elif module == "acm" and kind == "Certificate":
            rid = f"arn:aws:acm:{region}:{acct}:certificate/{_uuid('acm', name)}"
            domain = inputs.get("domainName") or f"{name}.example.com"
            state.update(arn=rid, status="PENDING_VALIDATION", domainValidationOptions=[{
                "domainName": domain, "resourceRecordName": f"_{h[:16]}.{domain}.",
                "resourceRecordType": "CNAME", "resourceRecordValue": f"_{h}.acm-validations.aws."}])
        elif module == "acm" and kind == "CertificateValidation":
            state.setdefault("certificateArn", inputs.get("certificateArn"))
        elif module == "route53" and kind == "Record":
            rid = f"{inputs.get('zoneId')}_{inputs.get('name')}_{inputs.get('type')}"
            state.update(fqdn=str(inputs.get("name") or name).rstrip("."))
        elif module == "cloudwatch" and kind in ("LogDeliverySource", "LogDeliveryDestination"):
            rid = inputs.get("name") or f"{name}-{h[:7]}"
            what = "delivery-source" if kind == "LogDeliverySource" else "delivery-destination"
            state.update(arn=f"arn:aws:logs:{region}:{acct}:{what}:{rid}", name=rid)
        elif module == "cloudwatch" and kind == "LogGroup":
            lname = inputs.get("name") or f"{name}-{h[:7]}"
            rid = lname
            state.update(arn=f"arn:aws:logs:{region}:{acct}:log-group:{lname}")
        else:
            state.setdefault("arn", f"arn:aws:{module}:{region}:{acct}:{kind.lower()}/{rid}")
        state.setdefault("id", rid)
        return rid, state


def _random_id(typ: str, name: str, inputs: dict) -> tuple[str, dict]:
    """pulumi-random's RandomId: `byteLength` bytes, drawn again when `keepers` change (here: derived
    from them), in each encoding the provider returns; `prefix` leads all but the id."""
    import base64
    import json

    raw = hashlib.shake_256(f"{typ}/{name}/{json.dumps(inputs.get('keepers') or {}, sort_keys=True)}".encode()) \
        .digest(int(inputs.get("byteLength") or 8))
    prefix = inputs.get("prefix") or ""
    b64_url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return b64_url, {**inputs, "hex": prefix + raw.hex(), "b64Url": prefix + b64_url,
                     "b64Std": prefix + base64.b64encode(raw).decode(), "dec": prefix + str(int.from_bytes(raw, "big"))}


def _unique_suffix(h: str) -> str:
    """The 26 characters AWS providers append to a `*_prefix` name (a timestamp and a counter)."""
    return "20250101000000" + str(int(h, 16)).zfill(12)[:12]


def _uuid(*parts: str) -> str:
    h = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
