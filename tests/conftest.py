"""Test configuration: a fast, deterministic hypothesis profile and a fixed torch thread count."""

from __future__ import annotations

import os
import sys

import torch
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))  # so that test modules can `import _helpers`

settings.register_profile(
    "default",
    max_examples=40,
    deadline=None,
    derandomize=True,  # the suite gives the same verdict on every run
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

torch.set_num_threads(min(2, torch.get_num_threads()))
