"""A synthetic recommender world with planted, known effects (``python -m ltr.simulate``).

Tests, benchmarks and fixtures draw their logs from it; ``truth.json`` records what was planted.
"""
from __future__ import annotations

from ltr.simulate._world import World, WorldConfig, position_bias, simulate_world

__all__ = ["World", "WorldConfig", "position_bias", "simulate_world"]
