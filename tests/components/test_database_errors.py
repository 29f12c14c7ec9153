"""Database: bad config names the field and the value."""

import pytest
from pydantic import ValidationError

from components.database import DatabaseArgs


def test_storage_below_the_rds_minimum_is_refused():
    with pytest.raises(ValidationError, match="storage_gb"):
        DatabaseArgs(storage_gb=5)


def test_an_autoscaling_ceiling_below_the_allocation_is_refused():
    with pytest.raises(ValidationError, match=r"max_storage_gb: must be >= storage_gb \(100\), got 50"):
        DatabaseArgs(storage_gb=100, max_storage_gb=50)


def test_backups_cannot_be_turned_off():
    with pytest.raises(ValidationError, match="backup_retention_days"):
        DatabaseArgs(backup_retention_days=0)


def test_an_unsupported_postgres_version_is_refused():
    with pytest.raises(ValidationError, match="engine_version"):
        DatabaseArgs(engine_version="12")


def test_a_password_cannot_be_given_at_all():
    with pytest.raises(ValidationError, match="password"):
        DatabaseArgs(password="hunter2")


def test_performance_insights_retention_must_be_a_value_rds_accepts():
    with pytest.raises(ValidationError, match="performance_insights_retention_days"):
        DatabaseArgs(performance_insights_retention_days=30)


def test_an_enhanced_monitoring_interval_rds_does_not_offer_is_refused():
    with pytest.raises(ValidationError, match=r"enhanced_monitoring_seconds\n.*Input should be 0, 1, 5, 10, 15, 30 or 60"):
        DatabaseArgs(enhanced_monitoring_seconds=45)
