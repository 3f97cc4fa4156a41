"""Settings for the web servers that tests start as processes (tests/crm/test_outage.py):
the product's own, with static files from the finders as in the in-process tests (the
suite runs no collectstatic, and DEBUG off would otherwise want the manifest)."""

from crm.settings import *  # noqa: F403
from crm.settings import STORAGES

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# The suite's users are made with the suite's hasher (tests/conftest.py).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
