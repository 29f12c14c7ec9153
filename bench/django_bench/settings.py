"""The shop's settings with the bench's URLs; every other value still comes from the environment.

BENCH_STATICFILES_DIR (optional): one more source directory for `collectstatic`, where the bench
writes its 100 KiB asset, so that the asset goes through the same collection (hashed name,
manifest) as the shop's own static files.
"""

import os

from shop.settings import *  # noqa: F403

ROOT_URLCONF = "django_bench.urls"

if os.environ.get("BENCH_STATICFILES_DIR"):
    STATICFILES_DIRS = [os.environ["BENCH_STATICFILES_DIR"]]
