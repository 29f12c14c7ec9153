"""A platform team's own program: one hardened web service from the kit's components.

Run it with the kit on PYTHONPATH: `pulumi config set image repo/app@sha256:...; pulumi up`.
"""

import pulumi

from components.namespace import Namespace, NamespaceArgs
from components.web_service import ClassIngress, Resources, WebService, WebServiceArgs

config = pulumi.Config()
namespace = Namespace("orders", NamespaceArgs(app_ports=[8000], database_port=None))
service = WebService(
    "orders-api",
    WebServiceArgs(
        image=config.require("image"),  # by digest: require_digest is on by default
        resources=Resources(cpu_request="500m", memory_request="512Mi", memory_limit="1Gi"),
        ingress=ClassIngress(ingress_class_name="nginx", host="orders.example.com"),
    ),
    namespace=namespace.name,
    secrets={"API_TOKEN": config.require_secret("apiToken")},
)
pulumi.export("url", service.url)
