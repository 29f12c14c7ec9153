"""ReleaseJob: settings that cannot work are refused, naming the field and the value."""

import pytest
from pydantic import ValidationError

from components.release_job import ReleaseJob, ReleaseJobArgs

IMAGE = "registry.example.com/shop@sha256:" + "a" * 64


def test_a_job_without_a_command_is_refused():
    with pytest.raises(ValidationError, match="command"):
        ReleaseJobArgs(image=IMAGE, command=[])


def test_an_image_pinned_by_tag_is_refused_when_a_digest_is_required():
    with pytest.raises(ValidationError, match=r"image: 'shop:1.2' is pinned by tag only"):
        ReleaseJobArgs(image="shop:1.2", command=["migrate"])


def test_a_deadline_too_short_to_pull_an_image_is_refused():
    with pytest.raises(ValidationError, match="active_deadline_seconds"):
        ReleaseJobArgs(image=IMAGE, command=["migrate"], active_deadline_seconds=5)


def test_a_negative_retry_budget_is_refused():
    with pytest.raises(ValidationError, match="backoff_limit"):
        ReleaseJobArgs(image=IMAGE, command=["migrate"], backoff_limit=-1)


def test_an_unknown_key_is_refused_not_ignored():
    with pytest.raises(ValidationError, match="ttl_seconds_after_finished"):
        ReleaseJobArgs(image=IMAGE, command=["migrate"], ttl_seconds_after_finished=60)


def test_a_job_name_too_long_for_a_label_is_refused(run):
    with pytest.raises(ValueError, match="ReleaseJob name: 'm+' is not a DNS label .* at most 40 characters"):
        run(lambda: ReleaseJob("m" * 41, ReleaseJobArgs(image=IMAGE, command=["migrate"]), namespace="shop"))
