"""The shop's settings, with the bench's URLs: every other value still comes from the environment."""

from shop.settings import *  # noqa: F403

ROOT_URLCONF = "django_bench.urls"
