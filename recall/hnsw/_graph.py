"""The graph of an hnswlib index as numpy arrays, and building/saving the index itself.

hnswlib's Python binding answers k-NN queries but does not expose the graph, and
the NIP search (:mod:`recall.hnsw._search`) walks the graph itself with a learned
scorer. This module builds an index with hnswlib (deterministically) and saves it;
:mod:`recall.hnsw._format` parses the saved file into an :class:`HNSWGraph`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ltr._validation import check_int

__all__ = ["HNSWGraph", "LevelLinks", "build_index", "save"]



@dataclass(frozen=True, eq=False)
class LevelLinks:
    """Neighbour lists of one graph level in CSR form.

    Parameters
    ----------
    nodes : ndarray of int64, shape (n_level_nodes,)
        Internal ids of the nodes present on this level, increasing. On level 0
        this is every node, ``arange(n_nodes)``.
    indptr : ndarray of int64, shape (n_level_nodes + 1,)
        The neighbours of ``nodes[i]`` are ``indices[indptr[i]:indptr[i + 1]]``.
    indices : ndarray of int64, shape (n_links,)
        Neighbour internal ids, in hnswlib's stored order.
    """

    nodes: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray

    def degrees(self) -> np.ndarray:
        """Number of neighbours of each node of ``nodes``.

        Returns
        -------
        ndarray of int64, shape (n_level_nodes,)
        """
        return np.diff(self.indptr)


@dataclass(frozen=True, eq=False)
class HNSWGraph:
    """The graph, vectors and labels of an hnswlib index, as read-only arrays.

    Internal ids are row numbers ``0 .. n_nodes - 1``; every array indexed by node
    uses them. Use :func:`read_graph` to build one.

    Parameters
    ----------
    labels : ndarray of int64, shape (n_nodes,)
        External label of each internal id (what ``add_items`` was given).
    vectors : ndarray of float32, shape (n_nodes, dim)
        Stored vector of each internal id.
    levels : ndarray of int64, shape (n_nodes,)
        Top level of each node; a node is present on levels ``0 .. levels[i]``.
    deleted : ndarray of bool, shape (n_nodes,)
        hnswlib's delete mark. Deleted nodes stay in the graph and route searches.
    entry_point : int
        Internal id where searches start; -1 for an empty index.
    max_level : int
        Top level of the graph, ``levels[entry_point]``; -1 for an empty index.
    M : int
        hnswlib's ``M``; also the maximum degree on levels >= 1 (``maxM``).
    maxM0 : int
        Maximum degree on level 0 (``2 * M`` for indexes built by hnswlib).
    ef_construction : int
        ``ef_construction`` the index was built with.
    links : tuple of LevelLinks
        ``links[l]`` holds the neighbour lists of level ``l``, ``0 .. max_level``;
        ``links[0]`` exists (empty) even for an empty index.
    """

    labels: np.ndarray
    vectors: np.ndarray
    levels: np.ndarray
    deleted: np.ndarray
    entry_point: int
    max_level: int
    M: int
    maxM0: int
    ef_construction: int
    links: tuple[LevelLinks, ...]

    @property
    def n_nodes(self) -> int:
        """Number of nodes (internal ids) in the graph."""
        return int(self.labels.shape[0])

    @property
    def dim(self) -> int:
        """Dimension of the stored vectors."""
        return int(self.vectors.shape[1])

    def neighbors(self, level: int, node: int) -> np.ndarray:
        """Neighbour internal ids of ``node`` on ``level``.

        Parameters
        ----------
        level : int
            Graph level, ``0 .. max_level``.
        node : int
            Internal id of a node present on ``level`` (``levels[node] >= level``).

        Returns
        -------
        ndarray of int64
            A read-only view, in hnswlib's stored order.

        Raises
        ------
        ValueError
            If ``level`` is out of range or ``node`` is not on that level.
        """
        level = check_int(level, "level", minimum=0)
        node = check_int(node, "node", minimum=0)
        if level > self.max_level:
            raise ValueError(
                f"level must be an int in [0, {self.max_level}]. Got {level} instead."
            )
        if node >= self.n_nodes or self.levels[node] < level:
            raise ValueError(
                f"node must be an internal id present on level {level}. Got {node} "
                "instead."
            )
        layer = self.links[level]
        row = node if level == 0 else int(np.searchsorted(layer.nodes, node))
        return layer.indices[layer.indptr[row] : layer.indptr[row + 1]]


def build_index(
    vectors: np.ndarray,
    labels: np.ndarray | None = None,
    M: int = 16,
    ef_construction: int = 200,
    seed: int = 0,
):
    """Build an hnswlib L2 index over ``vectors``, deterministically.

    Parameters
    ----------
    vectors : array-like of float, shape (n_items, dim)
        Item vectors; hnswlib stores them as float32.
    labels : array-like of int, shape (n_items,), optional
        Distinct non-negative external labels; defaults to ``arange(n_items)``.
    M : int, default=16
        hnswlib's ``M`` (maximum degree on upper levels; ``2 * M`` on level 0).
    ef_construction : int, default=200
        Beam width used while inserting.
    seed : int, default=0
        hnswlib's ``random_seed`` (draws node levels).

    Returns
    -------
    hnswlib.Index
        Space ``"l2"``, ``max_elements == n_items``, ``ef`` left at hnswlib's
        default. Items are inserted on one thread, in row order, so internal id
        ``i`` is row ``i`` and the same inputs give the same graph.

    Raises
    ------
    ValueError, TypeError
        On an empty or non-finite ``vectors``, or bad ``labels``/parameters.
    """
    import hnswlib

    array = np.asarray(vectors)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            "vectors must be a non-empty 2-D array (n_items, dim). Got shape "
            f"{array.shape} instead."
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(
            f"vectors must have a floating dtype. Got {array.dtype} instead."
        )
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise ValueError(
            f"vectors must be finite. Got a non-finite value in row {row} instead."
        )
    n_items = array.shape[0]
    label_array = np.arange(n_items, dtype=np.int64) if labels is None else _check_labels(labels, n_items)
    M = check_int(M, "M", minimum=2)
    ef_construction = check_int(ef_construction, "ef_construction", minimum=1)
    seed = check_int(seed, "seed", minimum=0)

    index = hnswlib.Index(space="l2", dim=array.shape[1])
    index.init_index(
        max_elements=n_items, M=M, ef_construction=ef_construction, random_seed=seed
    )
    # One thread: hnswlib's parallel insertion order, hence the graph, is not
    # reproducible, and internal ids would no longer follow row order.
    index.add_items(
        np.ascontiguousarray(array, dtype=np.float32),
        label_array.astype(np.uint64),
        num_threads=1,
    )
    return index


def save(index, path: str | os.PathLike) -> None:
    """Write an hnswlib index to ``path`` with hnswlib's own ``save_index``.

    Parameters
    ----------
    index : hnswlib.Index
        An initialised index.
    path : str or path-like
        Destination file; overwritten.

    Raises
    ------
    TypeError
        If ``index`` is not an ``hnswlib.Index``.
    """
    import hnswlib

    if not isinstance(index, hnswlib.Index):
        raise TypeError(
            f"index must be an hnswlib.Index. Got {type(index).__name__} instead."
        )
    index.save_index(os.fspath(path))



def _check_labels(labels, n_items: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (n_items,):
        raise ValueError(
            f"labels must have shape ({n_items},). Got {array.shape} instead."
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"labels must have an integer dtype. Got {array.dtype} instead.")
    array = array.astype(np.int64)
    if n_items and array.min() < 0:
        raise ValueError(
            f"labels must be non-negative. Got {int(array.min())} instead."
        )
    unique, counts = np.unique(array, return_counts=True)
    if unique.size != n_items:
        raise ValueError(
            f"labels must be distinct. Got {int(unique[np.argmax(counts > 1)])} "
            "more than once instead."
        )
    return array

