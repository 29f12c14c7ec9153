"""The admin, with django-otp's site as the default one, and its logins logged."""

from django.contrib.admin.apps import AdminConfig


class OTPAdminConfig(AdminConfig):
    # OTPAdminSite lets in only staff whose session passed a second factor: its login form
    # asks for a token from one of the user's confirmed devices (TOTP here), and a password
    # alone is refused. Every `admin.site.register` (ours and django-otp's) lands on it.
    default_site = "django_otp.admin.OTPAdminSite"

    def ready(self) -> None:
        super().ready()
        from shop import audit

        audit.connect()
