"""`python -m workers [NAME ...|all]`: the same as `takedown worker`."""

from __future__ import annotations

import sys

from api import logs
from api.settings import Settings

from .registry import main

if __name__ == "__main__":
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    sys.exit(main(settings, sys.argv[1:]))
