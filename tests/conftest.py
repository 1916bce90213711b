"""Shared test settings."""

import os

from hypothesis import settings

# CI must not fail on a new random example each run: the default profile replays the same
# examples. `HYPOTHESIS_PROFILE=explore pytest` searches new ones when changing the code.
settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
