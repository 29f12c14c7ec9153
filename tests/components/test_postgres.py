"""InClusterPostgres: the local target's database, restricted like every other pod."""

from __future__ import annotations

import pulumi
import pytest
from pydantic import ValidationError

from components.postgres import InClusterPostgres, InClusterPostgresArgs


def test_server_pod_is_restricted_and_keeps_its_volume(run):
    def program():
        pg = InClusterPostgres("db", InClusterPostgresArgs(), namespace="team", password=pulumi.Output.secret("pw"))
        pulumi.export("host", pg.host)

    mon = run(program)
    sts = mon.one("kubernetes:apps/v1:StatefulSet")
    pod = sts.inputs["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] >= 10000 and pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert sts.inputs["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert sts.inputs["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    secret = mon.one("kubernetes:core/v1:Secret")
    assert secret.inputs["stringData"] == "[secret]" and "pw" not in str(secret.inputs)


@pytest.mark.parametrize("args,message", [
    ({"storage": "lots"}, "storage\n  Value error, 'lots' is not a Kubernetes quantity (e.g."),
    ({"storage": "0"}, "storage\n  Value error, must be above zero, got '0'"),
    ({"image": "postgres:17", "require_digest": True}, "pinned by tag only"),
    ({"database_name": "App-DB"}, "database_name"),
])
def test_bad_args_name_the_field(args, message):
    with pytest.raises(ValidationError) as err:
        InClusterPostgresArgs(**args)
    assert message in str(err.value)
