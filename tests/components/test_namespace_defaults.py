"""Namespace: Pod Security "restricted" and a default-deny network with the web allows."""

import pulumi

from components.namespace import POD_SECURITY_VERSION, Namespace, NamespaceArgs

NS = "kubernetes:core/v1:Namespace"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def policy(monitor, role):
    return monitor.one(POLICY, f"shop-{role}").inputs["spec"]


def test_namespace_enforces_the_restricted_pod_security_standard(run):
    monitor = run(lambda: Namespace("shop", NamespaceArgs()))
    labels = monitor.one(NS).inputs["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == POD_SECURITY_VERSION


def test_namespace_keeps_its_exact_name_without_a_random_suffix(run):
    monitor = run(lambda: Namespace("shop", NamespaceArgs(namespace_name="shop-prod")))
    assert monitor.one(NS).inputs["metadata"]["name"] == "shop-prod"
    assert run(lambda: Namespace("shop", NamespaceArgs())).one(NS).inputs["metadata"]["name"] == "shop"


def test_every_pod_is_denied_all_traffic_unless_a_policy_allows_it(run):
    spec = policy(run(lambda: Namespace("shop", NamespaceArgs())), "default-deny")
    assert spec["podSelector"] == {}
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in spec and "egress" not in spec


def test_web_traffic_is_allowed_only_from_the_ingress_controller_on_the_app_ports(run):
    spec = policy(run(lambda: Namespace("shop", NamespaceArgs(app_ports=[8000, 8080]))), "allow-web")
    [rule] = spec["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}, {"protocol": "TCP", "port": 8080}]


def test_an_alb_sending_to_pod_ips_is_allowed_in_from_the_vpc_cidr_given_as_an_output(run):
    def program():
        Namespace("shop", NamespaceArgs(ingress_controller_namespace=None),
                  ingress_cidrs=pulumi.Output.from_input(["10.20.0.0/16"]))

    [rule] = policy(run(program), "allow-web")["ingress"]
    assert rule["from"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]


def test_prometheus_may_scrape_only_the_metrics_port_from_the_monitoring_namespace(run):
    [rule] = policy(run(lambda: Namespace("shop", NamespaceArgs(metrics_port=9100))), "allow-metrics")["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9100}]


def test_pods_may_resolve_names_over_udp_and_tcp_wherever_the_cluster_answers(run):
    [rule] = policy(run(lambda: Namespace("shop", NamespaceArgs())), "allow-dns")["egress"]
    # No pod selector: EKS Auto Mode answers DNS on the node, not from a kube-dns pod.
    assert "to" not in rule
    assert rule["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def test_pods_with_pod_identity_may_reach_only_the_agent_on_port_80(run):
    assert "shop-allow-pod-identity" not in [r.name for r in run(lambda: Namespace("shop", NamespaceArgs())).all(POLICY)]
    [rule] = policy(run(lambda: Namespace("shop", NamespaceArgs(pod_identity_agent=True))), "allow-pod-identity")["egress"]
    assert rule == {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]}


def test_pods_may_reach_the_database_port_only_in_the_database_subnets(run):
    monitor = run(lambda: Namespace("shop", NamespaceArgs(database_cidrs=["10.20.32.0/20"]),
                                    database_cidrs=["10.20.48.0/20"]))
    [rule] = policy(monitor, "allow-database")["egress"]
    assert rule["to"] == [{"ipBlock": {"cidr": "10.20.32.0/20"}}, {"ipBlock": {"cidr": "10.20.48.0/20"}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]


def test_pods_may_open_https_connections(run):
    [rule] = policy(run(lambda: Namespace("shop", NamespaceArgs())), "allow-https")["egress"]
    assert rule == {"ports": [{"protocol": "TCP", "port": 443}]}


def test_allows_that_are_switched_off_create_no_policy(run):
    monitor = run(lambda: Namespace("shop", NamespaceArgs(
        monitoring_namespace=None, database_port=None, allow_https_egress=False)))
    roles = sorted(r.name for r in monitor.all(POLICY))
    assert roles == ["shop-allow-dns", "shop-allow-web", "shop-default-deny"]


def test_pods_of_the_namespace_reach_each_other_only_when_asked(run):
    assert "shop-allow-namespace" not in [r.name for r in run(lambda: Namespace("shop", NamespaceArgs())).all(POLICY)]
    spec = policy(run(lambda: Namespace("shop", NamespaceArgs(allow_within_namespace=True))), "allow-namespace")
    assert spec["ingress"] == [{"from": [{"podSelector": {}}]}]
    assert spec["egress"] == [{"to": [{"podSelector": {}}]}]


def test_every_policy_lives_in_the_namespace_and_waits_for_it(run):
    monitor = run(lambda: Namespace("shop", NamespaceArgs()))
    ns = monitor.one(NS)
    component = monitor.one("webstack:components:Namespace")
    assert ns.parent == component.urn
    for reg in monitor.all(POLICY):
        assert reg.parent == component.urn
        assert reg.inputs["metadata"]["namespace"] == "shop"
        assert ns.urn in reg.dependencies


def test_every_manifest_passes_the_strict_kubernetes_1_34_schema(run):
    import kubernetes_validate

    monitor = run(lambda: Namespace("shop", NamespaceArgs(allow_within_namespace=True, ingress_cidrs=["10.0.0.0/16"])))
    for reg in monitor.all():
        if reg.custom:
            kubernetes_validate.validate(reg.inputs, "1.34.0", strict=True)
