"""Starts the Python policy pack for the engine tests the way a current Python language host does.

`pulumi preview --policy-pack <folder>` asks the language host of the pack's runtime to run it
(RunPlugin, kind "analyzer"). The host tools/build-engine can build is v3.68.0: its module is the
last served by the Go module proxy (the host's own module, github.com/pulumi/pulumi/sdk/python/
cmd/pulumi-language-python/v3, is refused at every version). Its RunPlugin predates policy packs
run that way: it runs `python <program> <engine>` with the request's deprecated `program` field,
which the 3.274 CLI leaves empty, so Python runs the project's own __main__.py and the pack never
starts ("policy pack ... failed to start: could not read plugin ...: exit status 1").

The CLI also accepts an executable file as the policy pack (it launches it directly, as it does a
provider binary, and reads PulumiPolicy.yaml next to it). This module is that executable's body.
It does what the current host does for a Python pack, and nothing else:

- it waits for the engine's ConfigureStack call, which carries the stack's name and config;
- it then starts `python -u -m pulumi.policy <engine> <pack folder>` in the pack's folder, with
  that config in PULUMI_CONFIG (and PULUMI_PROJECT, PULUMI_STACK, PULUMI_ORGANIZATION,
  PULUMI_DRY_RUN), which is how the pack reads `webstack:environment`;
- it forwards every analyzer call, unchanged, to the pack, and the pack's answers back.

So the CLI, the pack, pulumi-policy and the analyzer protocol are the real ones; only who starts
the pack differs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
from pulumi.runtime.proto import analyzer_pb2

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "/pulumirpc.Analyzer/"
# pulumi-policy's own limit: the stack's resources all arrive in one AnalyzeStack call.
MAX_MESSAGE = 400 * 1024 * 1024
OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]


def launcher(pack_dir: Path, name: str = "webstack-policy-host") -> Path:
    """Writes the executable that `--policy-pack` is given, into the pack's folder (so the CLI reads
    the pack's PulumiPolicy.yaml next to it), and returns its path."""
    path = pack_dir / name
    path.write_text(f"#!{ROOT / '.venv' / 'bin' / 'python'}\n"
                    "import sys\n"
                    f"sys.path.insert(0, {str(ROOT)!r})\n"
                    "from tests.engine.policy_host import serve\n"
                    f"serve({str(pack_dir)!r}, sys.argv[1])\n")
    path.chmod(0o755)
    return path


class PackProxy(grpc.GenericRpcHandler):
    """Every Analyzer method, forwarded as raw bytes to the pack once it runs."""

    def __init__(self, pack_dir: str, engine: str) -> None:
        self.pack_dir = pack_dir
        self.engine = engine
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.channel: grpc.Channel | None = None

    def start(self, stack: analyzer_pb2.AnalyzerStackConfigureRequest | None) -> grpc.Channel:
        with self.lock:
            if self.channel is None:
                env = dict(os.environ)
                if stack is not None:
                    for key, value in (("PULUMI_ORGANIZATION", stack.organization), ("PULUMI_PROJECT", stack.project),
                                       ("PULUMI_STACK", stack.stack),
                                       ("PULUMI_DRY_RUN", "true" if stack.dry_run else "false")):
                        if value:
                            env[key] = value
                    env["PULUMI_CONFIG"] = json.dumps(dict(stack.config))
                self.process = subprocess.Popen(
                    [sys.executable, "-u", "-m", "pulumi.policy", self.engine, self.pack_dir],
                    cwd=self.pack_dir, env=env, stdout=subprocess.PIPE, text=True)
                port = self.process.stdout.readline().strip()
                if not port.isdigit():
                    raise RuntimeError(f"the policy pack printed no port (exit {self.process.wait()})")
                # Anything else the pack prints goes where the CLI logs plugin output.
                threading.Thread(target=lambda: sys.stderr.writelines(self.process.stdout), daemon=True).start()
                self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS)
            return self.channel

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def service(self, details):
        method = details.method
        if not method.startswith(SERVICE):
            return None
        name = method[len(SERVICE):]

        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            if name == "Handshake":
                # As a pack run by the host: the CLI then proceeds without one.
                context.abort(grpc.StatusCode.UNIMPLEMENTED, "no handshake")
            stack = analyzer_pb2.AnalyzerStackConfigureRequest.FromString(request) if name == "ConfigureStack" else None
            channel = self.start(stack)
            try:
                return channel.unary_unary(method)(request)
            except grpc.RpcError as e:
                context.abort(e.code(), e.details())

        return grpc.unary_unary_rpc_method_handler(forward)


def serve(pack_dir: str, engine: str) -> None:
    """Serves the analyzer protocol on a loopback port, printed first as every plugin does."""
    proxy = PackProxy(pack_dir, engine)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=[proxy], options=OPTIONS)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    # The CLI ends its plugins with SIGINT, then SIGKILL to the process group (the pack's too).
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(0)
    finally:
        proxy.stop()
