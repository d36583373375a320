"""Read the graph of an hnswlib index out of its saved file, with numpy only.

hnswlib's Python binding answers k-NN queries but does not expose the graph, and
the NIP search (:mod:`recall.hnsw_search`) walks the graph itself with a learned
scorer. This module builds an index with hnswlib, saves it, and parses the saved
file into plain arrays. Nothing is unpickled: the file is raw bytes in the
layout below, read with :func:`numpy.fromfile` and structured dtypes.

File layout of hnswlib 0.8 (``HierarchicalNSW::saveIndex``), little-endian:

1. A 96-byte header: ``offsetLevel0`` u64, ``max_elements`` u64,
   ``cur_element_count`` u64, ``size_data_per_element`` u64, ``label_offset``
   u64, ``offsetData`` u64, ``maxlevel`` i32, ``enterpoint_node`` u32, ``maxM``
   u64, ``maxM0`` u64, ``M`` u64, ``mult`` f64, ``ef_construction`` u64.
2. ``cur_element_count`` level-0 records of ``size_data_per_element`` bytes,
   in internal-id order: a u32 count word (low 16 bits: number of neighbours;
   bit 0 of byte 2: the delete mark), ``maxM0`` u32 neighbour ids, the float32
   vector, a u64 label.
3. ``cur_element_count`` upper-level records: a u32 byte size (0 for a node that
   lives only on level 0), then for each level ``1 .. level`` a u32 count word
   followed by ``maxM`` u32 neighbour ids.

Neighbour ids are internal ids (row numbers of part 2), not labels.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass

import numpy as np

__all__ = ["HNSWGraph", "LevelLinks", "build_index", "read_graph", "save"]

_HEADER_DTYPE = np.dtype(
    [
        ("offset_level0", "<u8"),
        ("max_elements", "<u8"),
        ("cur_element_count", "<u8"),
        ("size_data_per_element", "<u8"),
        ("label_offset", "<u8"),
        ("offset_data", "<u8"),
        ("max_level", "<i4"),
        ("entry_point", "<u4"),
        ("max_m", "<u8"),
        ("max_m0", "<u8"),
        ("m", "<u8"),
        ("mult", "<f8"),
        ("ef_construction", "<u8"),
    ]
)
_HEADER_SIZE = _HEADER_DTYPE.itemsize  # 96: saveIndex writes the fields unpadded
_COUNT_MASK = np.uint32(0xFFFF)
_DELETE_BIT = np.uint32(1 << 16)
# hnswlib keeps the neighbour count in an unsigned short.
_MAX_DEGREE = 0xFFFF
_INT64_MAX = np.iinfo(np.int64).max


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
        level = _check_int(level, "level", 0)
        node = _check_int(node, "node", 0)
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
    if labels is None:
        label_array = np.arange(n_items, dtype=np.int64)
    else:
        label_array = _check_labels(labels, n_items)
    M = _check_int(M, "M", 2)
    ef_construction = _check_int(ef_construction, "ef_construction", 1)
    seed = _check_int(seed, "seed", 0)

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


def read_graph(path: str | os.PathLike, dim: int | None = None) -> HNSWGraph:
    """Parse an hnswlib 0.8 index file into an :class:`HNSWGraph`.

    Parameters
    ----------
    path : str or path-like
        File written by ``hnswlib.Index.save_index`` (or :func:`save`) for a
        float32 space (``"l2"``, ``"ip"``, ``"cosine"``).
    dim : int, optional
        Expected vector dimension. The file implies it; when given, a mismatch
        is an error.

    Returns
    -------
    HNSWGraph
        All arrays read-only.

    Raises
    ------
    ValueError
        If the file is too short, truncated, has trailing bytes, or its header or
        links are inconsistent (not an hnswlib 0.8 float32 index, or corrupted).
        The message names the inconsistent field.

    Notes
    -----
    Level 0 is one structured read. The upper-level records have variable
    length, so the start of each depends on all earlier sizes; they are located
    without a Python loop by pointer doubling over the nonzero words of that
    part of the file (a zero size word is a level-0-only node, so records with
    links are exactly the chain of nonzero size words that starts at the first
    nonzero word).
    """
    path = os.fspath(path)
    file_size = os.path.getsize(path)
    if file_size < _HEADER_SIZE:
        raise ValueError(
            f"index file must be at least {_HEADER_SIZE} bytes (the hnswlib header). "
            f"Got {file_size} bytes instead in {path!r}."
        )
    header = np.fromfile(path, dtype=_HEADER_DTYPE, count=1)[0]
    n_nodes, record_size, max_m, max_m0, vec_dim = _check_header(header, dim, path)

    level0_size = n_nodes * record_size
    minimum = _HEADER_SIZE + level0_size + 4 * n_nodes
    if file_size < minimum:
        raise ValueError(
            f"index file must be at least {minimum} bytes for {n_nodes} elements of "
            f"{record_size} bytes. Got {file_size} bytes instead in {path!r}; the "
            "file is truncated."
        )
    record_dtype = np.dtype(
        [
            ("count", "<u4"),
            ("links", "<u4", (max_m0,)),
            ("vector", "<f4", (vec_dim,)),
            ("label", "<u8"),
        ]
    )
    records = np.fromfile(path, dtype=record_dtype, count=n_nodes, offset=_HEADER_SIZE)
    tail_bytes = file_size - _HEADER_SIZE - level0_size
    if tail_bytes % 4:
        raise ValueError(
            "index file upper-level part must be a whole number of 4-byte words. "
            f"Got {tail_bytes} bytes instead in {path!r}; the file is corrupted."
        )
    tail = np.fromfile(
        path, dtype="<u4", count=tail_bytes // 4, offset=_HEADER_SIZE + level0_size
    )

    labels = records["label"]
    if n_nodes and labels.max() > _INT64_MAX:
        row = int(np.argmax(labels))
        raise ValueError(
            f"labels must fit in int64. Got {int(labels[row])} at internal id {row} "
            "instead."
        )
    counts = (records["count"] & _COUNT_MASK).astype(np.int64)
    deleted = (records["count"] & _DELETE_BIT) != 0
    level0 = _level0_links(records["links"], counts, n_nodes, max_m0)
    levels, upper = _upper_links(tail, n_nodes, max_m, path)

    max_level = int(header["max_level"])
    entry_point = int(header["entry_point"]) if n_nodes else -1
    if n_nodes:
        if levels.max() > max_level:
            node = int(np.argmax(levels))
            raise ValueError(
                f"node levels must be <= the header's maxlevel {max_level}. Got "
                f"{int(levels[node])} for internal id {node} instead."
            )
        if levels[entry_point] != max_level:
            raise ValueError(
                f"entry point level must equal maxlevel {max_level}. Got "
                f"{int(levels[entry_point])} for entry point {entry_point} instead."
            )
    links = (level0, *_split_upper_levels(upper, levels, max_level, max_m))
    for layer_number, layer in enumerate(links):
        _check_targets(layer, levels, layer_number)

    graph = HNSWGraph(
        labels=labels.astype(np.int64),
        vectors=np.ascontiguousarray(records["vector"]),
        levels=levels,
        deleted=deleted,
        entry_point=entry_point,
        max_level=max_level,
        M=int(header["m"]),
        maxM0=max_m0,
        ef_construction=int(header["ef_construction"]),
        links=links,
    )
    for array in (graph.labels, graph.vectors, graph.levels, graph.deleted):
        array.flags.writeable = False
    for layer in links:
        for array in (layer.nodes, layer.indptr, layer.indices):
            array.flags.writeable = False
    return graph


def _check_header(header, dim: int | None, path: str) -> tuple[int, int, int, int, int]:
    """Validate the header; return n_nodes, record size, maxM, maxM0, dim."""
    n_nodes = int(header["cur_element_count"])
    record_size = int(header["size_data_per_element"])
    max_m = int(header["max_m"])
    max_m0 = int(header["max_m0"])
    offset_data = int(header["offset_data"])
    label_offset = int(header["label_offset"])

    def fail(field: str, expected: str, got) -> ValueError:
        return ValueError(
            f"index header {field} must be {expected}. Got {got} instead in {path!r}; "
            "the file is not an hnswlib 0.8 float32 index or is corrupted."
        )

    if int(header["offset_level0"]) != 0:
        raise fail("offsetLevel0", "0", int(header["offset_level0"]))
    if not 1 <= max_m0 <= _MAX_DEGREE:
        raise fail("maxM0", f"in [1, {_MAX_DEGREE}]", max_m0)
    if not 1 <= max_m <= _MAX_DEGREE:
        raise fail("maxM", f"in [1, {_MAX_DEGREE}]", max_m)
    if n_nodes > int(header["max_elements"]):
        raise fail(
            "cur_element_count", f"<= max_elements {int(header['max_elements'])}", n_nodes
        )
    if offset_data != 4 + 4 * max_m0:
        raise fail("offsetData", f"4 + 4 * maxM0 = {4 + 4 * max_m0}", offset_data)
    data_bytes = label_offset - offset_data
    if data_bytes <= 0 or data_bytes % 4:
        raise fail(
            "label_offset", f"offsetData + 4 * dim with dim >= 1 (offsetData "
            f"{offset_data})", label_offset
        )
    vec_dim = data_bytes // 4
    if record_size != label_offset + 8:
        raise fail("size_data_per_element", f"label_offset + 8 = {label_offset + 8}",
                   record_size)
    if dim is not None:
        dim = _check_int(dim, "dim", 1)
        if dim != vec_dim:
            raise ValueError(
                f"dim must match the index file's dimension {vec_dim}. Got {dim} "
                "instead."
            )
    max_level = int(header["max_level"])
    if n_nodes == 0:
        if max_level != -1:
            raise fail("maxlevel", "-1 for an empty index", max_level)
    else:
        if max_level < 0:
            raise fail("maxlevel", ">= 0", max_level)
        if int(header["entry_point"]) >= n_nodes:
            raise fail("enterpoint_node", f"< cur_element_count {n_nodes}",
                       int(header["entry_point"]))
    return n_nodes, record_size, max_m, max_m0, vec_dim


def _level0_links(
    links: np.ndarray, counts: np.ndarray, n_nodes: int, max_m0: int
) -> LevelLinks:
    if n_nodes and counts.max() > max_m0:
        node = int(np.argmax(counts))
        raise ValueError(
            f"level-0 neighbour count must be <= maxM0 {max_m0}. Got "
            f"{int(counts[node])} for internal id {node} instead; the file is corrupted."
        )
    used = np.arange(max_m0) < counts[:, None]
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return LevelLinks(
        nodes=np.arange(n_nodes, dtype=np.int64),
        indptr=indptr,
        indices=links[used].astype(np.int64),
    )


def _upper_links(
    tail: np.ndarray, n_nodes: int, max_m: int, path: str
) -> tuple[np.ndarray, np.ndarray]:
    """Locate the upper-level records; return node levels and their link words.

    The second array has one row per (node, level >= 1) pair, node-major, each
    row a count word followed by ``maxM`` ids.
    """
    n_words = tail.shape[0]
    words_per_level = max_m + 1
    levels = np.zeros(n_nodes, dtype=np.int64)
    starts = np.flatnonzero(tail)
    if starts.size == 0:
        found = np.zeros(0, dtype=np.int64)
    else:
        size_words = tail[starts].astype(np.int64) // 4
        # The record after a nonzero record at word p starts at p + 1 + size;
        # the next nonzero record is the first nonzero word at or after it.
        successor = np.searchsorted(starts, starts + 1 + size_words)
        successor = np.append(successor, starts.size)  # sentinel: end of chain
        on_chain = np.zeros(starts.size + 1, dtype=bool)
        on_chain[0] = True
        jump = successor
        # After round r, on_chain holds the first 2**r chain members.
        for _ in range(int(np.ceil(np.log2(starts.size + 1))) + 1):
            on_chain[jump[on_chain]] = True
            jump = jump[jump]
        found = np.flatnonzero(on_chain[:-1])
    positions = starts[found] if found.size else found
    sizes = tail[positions].astype(np.int64)
    if np.any(sizes % (4 * words_per_level)):
        bad = int(sizes[np.flatnonzero(sizes % (4 * words_per_level))[0]])
        raise ValueError(
            "upper-level record size must be a multiple of 4 * (maxM + 1) = "
            f"{4 * words_per_level} bytes. Got {bad} instead in {path!r}; the file is "
            "corrupted."
        )
    size_words = sizes // 4
    if positions.size and positions[-1] + 1 + size_words[-1] > n_words:
        raise ValueError(
            f"index file must hold the last upper-level record ({int(sizes[-1])} "
            f"bytes at word {int(positions[-1])}). Got {n_words} words instead in "
            f"{path!r}; the file is truncated."
        )
    expected_words = n_nodes + int(size_words.sum())
    if expected_words != n_words:
        raise ValueError(
            f"index file upper-level part must be {4 * expected_words} bytes for "
            f"{n_nodes} elements. Got {4 * n_words} bytes instead in {path!r}; the "
            "file is truncated, has trailing bytes, or is corrupted."
        )
    # Node i's record starts at word i + (words of the nonzero records before it).
    before = np.concatenate(([0], np.cumsum(size_words)[:-1]))
    nodes = positions - before
    node_levels = size_words // words_per_level
    levels[nodes] = node_levels
    # Rows of (node, level) pairs, node-major then level-minor.
    pair_node = np.repeat(nodes, node_levels)
    pair_first = np.repeat(positions + 1, node_levels)
    level_in_node = np.arange(pair_node.size) - np.repeat(
        np.cumsum(node_levels) - node_levels, node_levels
    )
    row_start = pair_first + level_in_node * words_per_level
    rows = tail[row_start[:, None] + np.arange(words_per_level)]
    pair_level = level_in_node + 1
    return levels, np.column_stack((pair_node, pair_level, rows.astype(np.int64)))


def _split_upper_levels(
    upper: np.ndarray, levels: np.ndarray, max_level: int, max_m: int
) -> list[LevelLinks]:
    pair_node, pair_level = upper[:, 0], upper[:, 1]
    counts = upper[:, 2] & int(_COUNT_MASK)
    if counts.size and counts.max() > max_m:
        row = int(np.argmax(counts))
        raise ValueError(
            f"upper-level neighbour count must be <= maxM {max_m}. Got "
            f"{int(counts[row])} for internal id {int(pair_node[row])} on level "
            f"{int(pair_level[row])} instead; the file is corrupted."
        )
    ids = upper[:, 3:]
    out = []
    # Sorting by level keeps node order within a level (stable), so each level's
    # rows are contiguous and increasing in node id.
    order = np.argsort(pair_level, kind="stable")
    bounds = np.searchsorted(pair_level[order], np.arange(1, max_level + 2))
    for level in range(1, max_level + 1):
        rows = order[bounds[level - 1] : bounds[level]]
        level_counts = counts[rows]
        used = np.arange(max_m) < level_counts[:, None]
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(level_counts, out=indptr[1:])
        out.append(
            LevelLinks(nodes=pair_node[rows], indptr=indptr, indices=ids[rows][used])
        )
    return out


def _check_targets(layer: LevelLinks, levels: np.ndarray, level: int) -> None:
    if layer.indices.size == 0:
        return
    n_nodes = levels.shape[0]
    bad = (layer.indices >= n_nodes) | (layer.indices < 0)
    if not bad.any():
        bad = levels[layer.indices] < level
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        row = int(np.searchsorted(layer.indptr, position, side="right") - 1)
        raise ValueError(
            f"level-{level} neighbours must be internal ids present on level {level}. "
            f"Got {int(layer.indices[position])} in the list of internal id "
            f"{int(layer.nodes[row])} instead; the file is corrupted."
        )


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


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int. Got {value!r} instead.")
    if value < minimum:
        raise ValueError(f"{name} must be an int in [{minimum}, inf). Got {value} instead.")
    return int(value)
