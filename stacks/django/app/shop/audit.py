"""Logins in the logs (JSON lines with the request's trace id): who got in, and every refusal.

A wrong second-factor token after a right password means someone else may hold that
password: that line is the one to alert on.
"""

from __future__ import annotations

import logging

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django_otp.forms import otp_verification_failed

log = logging.getLogger("shop.audit")


def connect() -> None:
    user_logged_in.connect(_logged_in, dispatch_uid="shop.audit.logged_in")
    user_login_failed.connect(_wrong_password, dispatch_uid="shop.audit.wrong_password")
    otp_verification_failed.connect(_wrong_token, dispatch_uid="shop.audit.wrong_token")


def _logged_in(sender, request, user, **kwargs) -> None:
    log.info("login", extra={"username": user.get_username()})


def _wrong_password(sender, credentials, request=None, **kwargs) -> None:
    # Django has already masked the password in `credentials`; the username is what was typed.
    log.warning("login refused: wrong username or password",
                extra={"username": str(credentials.get("username", ""))[:150]})


def _wrong_token(sender, user, **kwargs) -> None:
    log.warning("login refused: wrong second-factor token", extra={"username": user.get_username()})
