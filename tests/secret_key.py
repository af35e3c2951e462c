"""A Django secret key for the test run, set before pytest-django imports the settings (which
refuse to start without one outside the sandbox). Loaded with ``-p`` from pyproject.toml."""

import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", f"test-run-{secrets.token_urlsafe(32)}")
