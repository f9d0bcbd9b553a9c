"""Run manage.py and Python as a person would, on the embedded default.

For tests that must see what a terminal sees (stdout apart from stderr) or
start from a database nobody has touched: each gets a fresh SQLite file in a
temporary directory, the database cache in it, and the console backend, with
every other variable unset so that neither a developer's `.env` nor the
services run's DATABASE_URL and CACHE_URL has a say.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def embedded_default_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Return the environment of the embedded default on a database in `tmp_path`."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DEBUG": "true",
        "SECRET_KEY": "",
        "ALLOWED_HOSTS": "",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CACHE_URL": "dbcache://django_cache",
        "VERIFY_BACKEND": "console",
        "VERIFY_TEST_NUMBERS": "",
        "LOG_FORMAT": "plain",
        "LOG_LEVEL": "INFO",
        **overrides,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run `python manage.py ARGS` with `env`; stdout and stderr kept apart."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def python(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    """Run `code` in a child Python with the site's settings and `env`."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "passwordless.settings"},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
