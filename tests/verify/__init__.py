"""Helpers for tests/test_verify.py: moto's server as the AWS API (emulator.py) and local HTTPS
sites standing in for the app and the CDN (sites.py)."""
