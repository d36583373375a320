"""Options of the simulated world that recall benchmarks turn on (all off by default, so the
committed fixture's world is unchanged):

* ``interaction="max"``: a user-item interaction no inner product represents. A user's
  interest is 1-3 *separate* vectors (one per interest category, each drifting like the
  user's mean vector); the click affinity with an item is the **largest** dot product over
  them, not the dot product with their weighted mean. A user who likes sport and cooking
  likes a cooking video as much as a sport video, however the two interests are weighted,
  and the mean vector (a two-tower's user vector at best) dilutes both. A model that lets the
  target item attend over the user's history (the NIP model) can pick the matching interest.
  ``truth.json`` records it under ``"interaction"``.
* ``exposure_depth=N`` (> ``exposures_per_request``): what is exposed is not the ranker's top
  10 but a draw without replacement from its top ``N`` candidates, each weighted
  ``rank ** -exposure_power`` (a mixer, business rules, exploration), shown in the order
  drawn. The exposed-not-clicked pool then differs from the ranker's rank 1-10 segment, and
  unexposed candidates of the top segment exist (cascade training needs both).
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["INTERACTIONS", "affinity", "check_options", "exposed_slots", "interaction_truth"]

#: The values of ``WorldConfig.interaction``.
INTERACTIONS = ("none", "max")


def check_options(cfg: Any) -> None:
    """Raise ``ValueError`` for an unknown interaction or an exposure depth shallower than the page."""
    if cfg.interaction not in INTERACTIONS:
        raise ValueError(f"interaction must be one of {list(INTERACTIONS)}. Got {cfg.interaction!r} instead.")
    depth = cfg.exposure_depth
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
        raise TypeError(f"exposure_depth must be an int >= 0. Got {depth!r} instead.")
    if depth and depth < cfg.exposures_per_request:
        raise ValueError(f"exposure_depth must be 0 or >= exposures_per_request ({cfg.exposures_per_request}). "
                         f"Got {depth} instead.")
    if not cfg.exposure_power >= 0:
        raise ValueError(f"exposure_power must be a float >= 0. Got {cfg.exposure_power!r} instead.")


def affinity(cfg: Any, cat: Any, pop: Any, user: np.ndarray, day: np.ndarray, item: np.ndarray) -> np.ndarray:
    """The user-item affinity of each (user, day, item) triple (see module docstring)."""
    if cfg.interaction == "none":
        return np.einsum("nd,nd->n", pop.vec_by_day[user, day], cat.vec[item])
    n_cat = int(cat.category.max()) + 1
    centres = np.zeros((n_cat, cat.vec.shape[1]))
    np.add.at(centres, cat.category, cat.vec)
    counts = np.bincount(cat.category, minlength=n_cat)[:, None]
    centres = np.divide(centres, counts, out=np.zeros_like(centres), where=counts > 0)
    # Each interest vector drifts with the user's mean vector (same random walk), so
    # <centre_s + drift, item> = <centre_s, item> + <drift, item>: no (n, slots, dim) array.
    item_vec = cat.vec[item]
    drift_dot = (np.einsum("nd,nd->n", pop.vec_by_day[user, day], item_vec)
                 - np.einsum("nd,nd->n", pop.vec_by_day[user, 0], item_vec))
    centre_dot = centres @ cat.vec.T  # (n_categories, n_items)
    weights = np.diff(pop.interest_cdf[user], axis=1, prepend=0.0)
    dots = centre_dot[pop.interests[user], item[:, None]]  # (n, slots)
    return np.where(weights > 0, dots, -np.inf).max(axis=1) + drift_dot


def exposed_slots(cfg: Any, rng: np.random.Generator, req: np.ndarray,
                  rank_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which ranked candidates (sorted by request, then rank) are exposed, and their positions.

    Returns the indices of the exposed candidates and their 1-based positions. Without
    ``exposure_depth`` it is the ranker's top ``exposures_per_request`` in rank order (no
    random draw, so default worlds keep their random streams).
    """
    per_page = cfg.exposures_per_request
    if not cfg.exposure_depth:
        shown = np.flatnonzero(rank_pos <= per_page)
        return shown, rank_pos[shown]
    pool = np.flatnonzero(rank_pos <= cfg.exposure_depth)
    # Gumbel top-k: the best keys of log(weight) + Gumbel noise are a weighted draw without
    # replacement, in the order drawn.
    key = -cfg.exposure_power * np.log(rank_pos[pool]) + rng.gumbel(size=pool.size)
    order = np.lexsort((-key, req[pool]))
    pool, pool_req = pool[order], req[pool][order]
    position = np.arange(pool.size) - np.searchsorted(pool_req, pool_req, side="left") + 1
    keep = position <= per_page
    shown, position = pool[keep], position[keep]
    back = np.argsort(shown, kind="stable")  # callers expect candidate order (request, rank)
    return shown[back], position[back]


def interaction_truth(cfg: Any) -> dict[str, Any]:
    """What ``truth.json`` records about these options: ``{"recall_options": ...}``, or nothing
    when they are all off (the committed fixture's truth stays as it was)."""
    if cfg.interaction == "none" and not cfg.exposure_depth:
        return {}
    descriptions = {
        "none": "affinity = <user mean interest vector (drifting), item vector>: an inner product.",
        "max": ("affinity = max over the user's 1-3 interest vectors (category centre + the user's drift) of "
                "<interest vector, item vector>: no single user vector reproduces it (a max of dot products)."),
    }
    return {"recall_options": {
            "interaction": cfg.interaction, "description": descriptions[cfg.interaction],
            "exposure_depth": int(cfg.exposure_depth), "exposure_power": float(cfg.exposure_power),
            "exposures": ("the ranker's top exposures_per_request, in rank order" if not cfg.exposure_depth else
                          "a draw without replacement from the ranker's top exposure_depth candidates, weighted "
                          "rank ** -exposure_power, in the order drawn")}}
