"""Parse a saved hnswlib index file into an :class:`~recall.hnsw._graph.HNSWGraph`, with numpy only.

Nothing is unpickled: the file is raw bytes in the layout below, read with
:func:`numpy.fromfile` and structured dtypes.

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

import os

import numpy as np

from ltr._validation import check_int
from recall.hnsw._graph import HNSWGraph, LevelLinks

__all__ = ["read_graph"]

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
    header, records, tail = _read_parts(path, dim)
    n_nodes = int(header["cur_element_count"])
    max_m, max_m0 = int(header["max_m"]), int(header["max_m0"])
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
    _check_levels(levels, max_level, entry_point)
    links = (level0, *_split_upper_levels(upper, levels, max_level, max_m))
    for layer_number, layer in enumerate(links):
        _check_targets(layer, levels, layer_number)

    return _read_only(
        HNSWGraph(
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
    )


def _read_parts(path: str, dim: int | None) -> tuple[np.void, np.ndarray, np.ndarray]:
    """The checked header, the level-0 records and the upper-level part as u32 words."""
    file_size = os.path.getsize(path)
    if file_size < _HEADER_SIZE:
        raise ValueError(
            f"index file must be at least {_HEADER_SIZE} bytes (the hnswlib header). "
            f"Got {file_size} bytes instead in {path!r}."
        )
    header = np.fromfile(path, dtype=_HEADER_DTYPE, count=1)[0]
    n_nodes, record_size, _, max_m0, vec_dim = _check_header(header, dim, path)

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
    return header, records, tail


def _check_levels(levels: np.ndarray, max_level: int, entry_point: int) -> None:
    if not levels.shape[0]:
        return
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


def _read_only(graph: HNSWGraph) -> HNSWGraph:
    for array in (graph.labels, graph.vectors, graph.levels, graph.deleted):
        array.flags.writeable = False
    for layer in graph.links:
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
        dim = check_int(dim, "dim", minimum=1)
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

