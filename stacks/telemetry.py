"""The OpenTelemetry environment both frameworks' servers get: who is sending (service, environment,
pod), how much is sampled, and where spans go. Read by the SDK itself (no kit code in the app).
"""

from __future__ import annotations

# Which pod, namespace and node a span came from: OpenTelemetry's Kubernetes resource attributes,
# filled by the kubelet from the pod's own fields.
POD_FIELD_ENV = {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "NODE_NAME": "spec.nodeName"}
K8S_RESOURCE_ATTRIBUTES = "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),k8s.node.name=$(NODE_NAME)"


def otel_env(*, service_name: str, environment: str, otlp_endpoint: str | None,
             trace_sample_ratio: float) -> dict[str, str]:
    """The standard OTEL_* variables. `$(POD_NAME)` and friends need POD_FIELD_ENV in the same container."""
    env = {
        "OTEL_SERVICE_NAME": service_name,
        "OTEL_RESOURCE_ATTRIBUTES": f"deployment.environment.name={environment},service.namespace={service_name},"
                                    + K8S_RESOURCE_ATTRIBUTES,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": format(trace_sample_ratio, "g"),
        "OTEL_PYTHON_LOG_CORRELATION": "true",
        "OTEL_METRICS_EXPORTER": "none",  # metrics go to Prometheus via /metrics
        "OTEL_LOGS_EXPORTER": "none",  # logs go to stdout
    }
    if otlp_endpoint:
        env |= {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint.rstrip("/"),
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    else:
        # No collector yet: nothing is sent (an app may still create spans, for the trace ids in its logs).
        env["OTEL_TRACES_EXPORTER"] = "none"
    return env
