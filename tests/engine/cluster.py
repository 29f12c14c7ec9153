"""A throwaway Kubernetes control plane on loopback, for running the real engine against.

etcd, kube-apiserver (Pod Security admission on), kube-controller-manager and
kube-scheduler are the real programs, built by tools/build-engine. What a cluster has that
cannot run here stands in, each one small and named after what it replaces:

- KWOK stands in for kubelets: fake nodes whose pods go Running and Ready, and whose Job
  pods exit 0, or 1 when their image contains FAIL_MARKER (kwok-stages.yaml).
- IngressNginxStandIn stands in for ingress-nginx: it writes the status.loadBalancer that
  the controller would, on Ingresses of class nginx (pulumi-kubernetes waits for it).
- LOCAL_STORAGE stands in for kind's local-path provisioner: a default StorageClass and a
  few pre-made PersistentVolumes that claims bind to.

Everything listens on 127.0.0.1 only, lives in one temporary folder and is stopped by
`Cluster.stop()`; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ENGINE_DIR = Path(os.environ.get("WEBSTACK_ENGINE_DIR") or Path.home() / ".cache" / "webstack-engine")
ENGINE_BIN = ENGINE_DIR / "bin"
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
ENGINE = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-kubernetes")
STAGES = Path(__file__).with_name("kwok-stages.yaml")

CONTEXT = "webstack-engine"
# A Job pod whose image contains this exits 1 (kwok-stages.yaml, stage job-pod-fails).
FAIL_MARKER = "webstack-fail-release"
NODES = ("kwok-node-a", "kwok-node-b")
SERVICE_CIDR = "10.96.0.0/16"  # addresses the apiserver hands to Services; nothing routes them
POD_CIDR = "10.244.0.1/24"  # addresses KWOK writes into pod status; nothing routes them either
INGRESS_CLASS = "nginx"
INGRESS_HOSTNAME = "localhost"  # what ingress-nginx on kind reports
STORAGE_CLASS = "standard"  # kind's default StorageClass name
# Retained volumes stay Released after a destroy: one per database stack a run brings up, with room.
PV_COUNT, PV_SIZE = 8, "10Gi"


def missing_tools() -> list[str]:
    return [t for t in (*CONTROL_PLANE, *ENGINE) if not (ENGINE_BIN / t).is_file()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, timeout: float, interval: float = 0.25):
    """Polls `check()` until it returns something truthy; raises with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - reported below if it never succeeds
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s" + (f" (last error: {last})" if last else ""))


class KubeApi:
    """The few REST calls the harness and the tests make, with the admin client cert."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path) -> None:
        self.server = server
        self._ctx = ssl.create_default_context(cafile=str(ca))
        self._ctx.load_cert_chain(str(cert), str(key))

    def request(self, method: str, path: str, body: dict | None = None, *,
                content_type: str = "application/json", timeout: float = 10) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
        with urllib.request.urlopen(req, context=self._ctx, timeout=timeout) as resp:
            raw = resp.read()
            is_json = resp.headers.get_content_type() == "application/json"
        return json.loads(raw) if raw and is_json else {"text": raw.decode(errors="replace")}

    def get(self, path: str) -> dict:
        return self.request("GET", path)

    def get_or_none(self, path: str) -> dict | None:
        try:
            return self.get(path)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def items(self, path: str) -> list[dict]:
        return self.get(path).get("items", [])

    def create(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)

    def merge_patch(self, path: str, body: dict) -> dict:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def delete(self, path: str) -> None:
        try:
            self.request("DELETE", path)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class IngressNginxStandIn(threading.Thread):
    """Stands in for ingress-nginx: gives every Ingress of class nginx the load balancer
    status the controller would write (kind's reports `localhost`). Without it, pulumi-kubernetes
    waits for that status until its timeout (pkg/await/ingress.go: "Ingress ... not ready")."""

    def __init__(self, api: KubeApi, interval: float = 0.5) -> None:
        super().__init__(name="ingress-nginx-stand-in", daemon=True)
        self.api, self.interval = api, interval
        self._halt = threading.Event()
        self.patched: list[str] = []

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                for ing in self.api.items("/apis/networking.k8s.io/v1/ingresses"):
                    if ing["spec"].get("ingressClassName") != INGRESS_CLASS:
                        continue
                    if (ing.get("status") or {}).get("loadBalancer", {}).get("ingress"):
                        continue
                    meta = ing["metadata"]
                    self.api.merge_patch(
                        f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}/ingresses/{meta['name']}/status",
                        {"status": {"loadBalancer": {"ingress": [{"hostname": INGRESS_HOSTNAME}]}}})
                    self.patched.append(f"{meta['namespace']}/{meta['name']}")
            except Exception:  # noqa: BLE001 - the API server may be stopping; try again next tick
                continue

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _local_storage_objects() -> list[tuple[str, dict]]:
    """Stands in for kind's local-path provisioner: a default StorageClass whose claims bind
    at once to pre-made PersistentVolumes (the PV controller binds; nothing is provisioned)."""
    objects: list[tuple[str, dict]] = [("/apis/storage.k8s.io/v1/storageclasses", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "Immediate",
        "reclaimPolicy": "Delete",
    })]
    for i in range(PV_COUNT):
        objects.append(("/api/v1/persistentvolumes", {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"local-pv-{i}"},
            "spec": {"capacity": {"storage": PV_SIZE}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": STORAGE_CLASS,
                     "persistentVolumeReclaimPolicy": "Retain",
                     "hostPath": {"path": f"/tmp/webstack-engine-pv-{i}"}},
        }))
    return objects


@dataclass
class Cluster:
    """`Cluster(workdir).start()` brings the control plane up; `.stop()` takes it down."""

    workdir: Path
    bin: Path = ENGINE_BIN
    startup_timeout: float = 90
    processes: list[Process] = field(default_factory=list)
    api: KubeApi | None = None
    kubeconfig: Path | None = None
    ingress: IngressNginxStandIn | None = None

    # -- certificates and keys -------------------------------------------------------
    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], cwd=self.pki, check=True, capture_output=True, timeout=30)

    def _make_pki(self) -> None:
        self.pki = self.workdir / "pki"
        self.pki.mkdir(parents=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self._openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                      "-subj", "/CN=webstack-engine-ca")

        def leaf(name: str, subj: str, ext: str) -> None:
            (self.pki / f"{name}.ext").write_text(ext)
            self._openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj)
            self._openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                          "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")

        leaf("apiserver", "/CN=kube-apiserver",
             "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
             "DNS:kubernetes.default.svc,IP:10.96.0.1\nextendedKeyUsage=serverAuth\n")
        # system:masters: the admin group; the controllers use it too (no per-controller RBAC here).
        leaf("admin", "/O=system:masters/CN=webstack-engine-admin", "extendedKeyUsage=clientAuth\n")
        # Service-account token signing key pair.
        self._openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key")
        self._openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")

    def _write_kubeconfig(self, server: str) -> Path:
        path = self.workdir / "kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
            "clusters": [{"name": CONTEXT, "cluster": {
                "server": server, "certificate-authority": str(self.pki / "ca.crt")}}],
            "users": [{"name": CONTEXT, "user": {
                "client-certificate": str(self.pki / "admin.crt"), "client-key": str(self.pki / "admin.key")}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}],
        }, indent=2))
        return path

    # -- processes -------------------------------------------------------------------
    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> Process:
        """Starts bin/NAME as one of the cluster's processes: `stop()` ends it with the others."""
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("wb") as out:
            popen = subprocess.Popen([str(self.bin / name), *args], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir, start_new_session=True, env=env)
        proc = Process(name, popen, log)
        self.processes.append(proc)
        return proc

    def _alive(self, proc: Process) -> bool:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        return True

    def start(self) -> "Cluster":
        missing = missing_tools()
        if missing:
            raise RuntimeError(f"not built: {', '.join(missing)} in {self.bin}; run tools/build-engine")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._make_pki()
        pki = self.pki

        etcd_client, etcd_peer = free_port(), free_port()
        etcd = self.spawn(
            "etcd", "--name=engine", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=engine=http://127.0.0.1:{etcd_peer}",
            # A test cluster: speed over durability.
            "--unsafe-no-fsync", "--log-level=warn")
        wait_for("etcd", lambda: self._alive(etcd) and urllib.request.urlopen(
            f"http://127.0.0.1:{etcd_client}/health", timeout=2).status == 200, self.startup_timeout)

        port = free_port()
        server = f"https://127.0.0.1:{port}"
        apiserver = self.spawn(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_client}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            # Unused (no aggregated API servers), but without it the controller-manager and the
            # scheduler log an error every second about the missing request-header CA.
            f"--requestheader-client-ca-file={pki / 'ca.crt'}", "--requestheader-allowed-names=front-proxy",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            # On by default since 1.25; named so the tests' reliance on it is explicit.
            "--enable-admission-plugins=PodSecurity",
            # The `kubernetes` Service's endpoint would be 127.0.0.1, which Endpoints refuse.
            "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false", "--profiling=false", "--v=1")
        self.kubeconfig = self._write_kubeconfig(server)
        self.api = KubeApi(server, pki / "ca.crt", pki / "admin.crt", pki / "admin.key")
        wait_for("kube-apiserver /readyz",
                 lambda: self._alive(apiserver) and self.api.get("/readyz").get("text") == "ok", self.startup_timeout)

        kc = str(self.kubeconfig)
        self.spawn(
            "kube-controller-manager", f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}", "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            "--leader-elect=false", "--use-service-account-credentials=false",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            # KWOK marks its nodes Ready once and sends no heartbeats; with the default 40 s the
            # node lifecycle controller would mark them unreachable and evict every pod. It still
            # runs: it lifts the not-ready taint that admission puts on every new node.
            "--node-monitor-grace-period=1h",
            "--v=1")
        self.spawn(
            "kube-scheduler", f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}", "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            "--leader-elect=false", "--v=1")
        self.spawn(
            "kwok", f"--kubeconfig={kc}", f"--config={STAGES}",
            "--manage-all-nodes=false", "--manage-nodes-with-label-selector=type=kwok",
            f"--cidr={POD_CIDR}", f"--server-address=127.0.0.1:{free_port()}")

        for name in NODES:
            self.api.create("/api/v1/nodes", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {
                    "type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": f"zone-{name[-1]}"}},
            })
        wait_for("KWOK nodes Ready and untainted", self._nodes_ready, self.startup_timeout)
        # Pods need the namespace's `default` ServiceAccount (the ServiceAccount admission
        # plugin refuses them before the controller made it): wait for it in `default`.
        wait_for("controller-manager (default ServiceAccount)",
                 lambda: self._all_alive() and self.api.get_or_none("/api/v1/namespaces/default/serviceaccounts/default"),
                 self.startup_timeout)
        for path, body in _local_storage_objects():
            self.api.create(path, body)
        self.ingress = IngressNginxStandIn(self.api)
        self.ingress.start()

    def _all_alive(self) -> bool:
        return all(self._alive(p) for p in self.processes)

    def _nodes_ready(self) -> bool:
        self._all_alive()
        nodes = self.api.items("/api/v1/nodes?labelSelector=type%3Dkwok")
        ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in n.get("status", {}).get("conditions", []))
                 and not n["spec"].get("taints")]
        return len(ready) == len(NODES)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (last lines)\n{p.tail()}" for p in self.processes)

    def stop(self) -> None:
        if self.ingress is not None:
            self.ingress.stop()
        for proc in reversed(self.processes):
            if proc.popen.poll() is None:
                try:
                    os.killpg(proc.popen.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in reversed(self.processes):
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.popen.wait(timeout=5)
        self.processes.clear()
