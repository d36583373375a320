"""Tests for recall.hnsw._format and recall.hnsw._graph: parsing hnswlib's saved index with numpy."""

from __future__ import annotations

import heapq
import struct

import hnswlib
import numpy as np
import pytest

from recall.hnsw import HNSWGraph, build_index, read_graph, save

HEADER = struct.Struct("<QQQQQQiIQQQdQ")


def _random_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _saved_graph(tmp_path, n=600, dim=8, M=8, ef_construction=60, seed=0, labels=None):
    vectors = _random_vectors(n, dim, seed)
    index = build_index(vectors, labels, M=M, ef_construction=ef_construction, seed=seed)
    path = tmp_path / "index.bin"
    save(index, path)
    return vectors, index, path


def _slow_parse(path):
    """Byte-by-byte reference parser following hnswlib's saveIndex with struct."""
    raw = path.read_bytes()
    fields = HEADER.unpack_from(raw, 0)
    n, record, label_offset, offset_data = fields[2], fields[3], fields[4], fields[5]
    max_m = fields[8]
    dim = (label_offset - offset_data) // 4
    lists = {}
    vectors, labels, levels = [], [], []
    for node in range(n):
        base = HEADER.size + node * record
        count = struct.unpack_from("<I", raw, base)[0] & 0xFFFF
        lists[(0, node)] = list(struct.unpack_from(f"<{count}I", raw, base + 4))
        vectors.append(struct.unpack_from(f"<{dim}f", raw, base + offset_data))
        labels.append(struct.unpack_from("<Q", raw, base + label_offset)[0])
    pos = HEADER.size + n * record
    for node in range(n):
        size = struct.unpack_from("<I", raw, pos)[0]
        pos += 4
        n_levels = size // (4 * (max_m + 1))
        levels.append(n_levels)
        for level in range(1, n_levels + 1):
            start = pos + (level - 1) * 4 * (max_m + 1)
            count = struct.unpack_from("<I", raw, start)[0] & 0xFFFF
            lists[(level, node)] = list(struct.unpack_from(f"<{count}I", raw, start + 4))
        pos += size
    assert pos == len(raw)
    return dict(
        entry=fields[7], max_level=fields[6], lists=lists, levels=levels,
        vectors=np.array(vectors, dtype=np.float32).reshape(n, dim), labels=labels,
    )


def _reference_knn(graph: HNSWGraph, query: np.ndarray, k: int, ef: int) -> list[int]:
    """hnswlib's searchKnn re-implemented over the parsed graph (no deletions)."""
    dist = ((graph.vectors - query) ** 2).sum(axis=1, dtype=np.float32)
    current = graph.entry_point
    current_dist = dist[current]
    for level in range(graph.max_level, 0, -1):
        changed = True
        while changed:
            changed = False
            # hnswlib scans the list of the node it started the pass from.
            for cand in graph.neighbors(level, current):
                if dist[cand] < current_dist:
                    current, current_dist = int(cand), dist[cand]
                    changed = True
    ef = max(ef, k)
    visited = {current}
    top = [(-current_dist, current)]
    candidates = [(current_dist, current)]
    lower = current_dist
    while candidates:
        cand_dist, cand = candidates[0]
        if cand_dist > lower:
            break
        heapq.heappop(candidates)
        for nb in graph.neighbors(0, cand):
            nb = int(nb)
            if nb in visited:
                continue
            visited.add(nb)
            if len(top) < ef or lower > dist[nb]:
                heapq.heappush(candidates, (dist[nb], nb))
                heapq.heappush(top, (-dist[nb], nb))
                if len(top) > ef:
                    heapq.heappop(top)
                lower = -top[0][0]
    best = sorted((-d, node) for d, node in top)[:k]
    return [int(graph.labels[node]) for _, node in best]


@pytest.mark.parametrize(("n", "dim", "M"), [(1, 4, 4), (2, 3, 2), (50, 5, 4), (800, 12, 6)])
def test_parse_matches_byte_reference(tmp_path, n, dim, M):
    _, _, path = _saved_graph(tmp_path, n=n, dim=dim, M=M, seed=n)
    ref = _slow_parse(path)
    graph = read_graph(path, dim)
    assert graph.n_nodes == n and graph.dim == dim
    assert graph.entry_point == ref["entry"] and graph.max_level == ref["max_level"]
    np.testing.assert_array_equal(graph.levels, ref["levels"])
    np.testing.assert_array_equal(graph.vectors, ref["vectors"])
    np.testing.assert_array_equal(graph.labels, ref["labels"])
    assert len(graph.links) == graph.max_level + 1
    for (level, node), expected in ref["lists"].items():
        np.testing.assert_array_equal(graph.neighbors(level, node), expected)


def test_vectors_and_labels_equal_what_was_added(tmp_path):
    rng = np.random.default_rng(7)
    labels = rng.permutation(10_000)[:700] * 3 + 11
    vectors, _, path = _saved_graph(tmp_path, n=700, dim=10, labels=labels)
    graph = read_graph(path)
    assert graph.labels.dtype == np.int64 and graph.vectors.dtype == np.float32
    # One-thread insertion keeps row order: internal id i is row i.
    np.testing.assert_array_equal(graph.labels, labels)
    np.testing.assert_array_equal(graph.vectors, vectors)
    assert not graph.deleted.any()
    assert not graph.vectors.flags.writeable and not graph.links[0].indices.flags.writeable


@pytest.mark.parametrize("M", [2, 5, 16])
def test_degrees_respect_m_and_levels_nest(tmp_path, M):
    _, _, path = _saved_graph(tmp_path, n=1500, dim=6, M=M, seed=M)
    graph = read_graph(path, 6)
    assert graph.M == M and graph.maxM0 == 2 * M
    assert graph.links[0].degrees().max() <= graph.maxM0
    assert graph.links[0].degrees().min() >= 1
    assert graph.levels[graph.entry_point] == graph.max_level == graph.levels.max()
    for level, layer in enumerate(graph.links):
        np.testing.assert_array_equal(layer.nodes, np.flatnonzero(graph.levels >= level))
        if level:
            assert layer.degrees().max() <= M
        owners = np.repeat(layer.nodes, layer.degrees())
        assert not np.any(owners == layer.indices)  # no self loops
        assert np.all(graph.levels[layer.indices] >= level)


@pytest.mark.parametrize(("ef", "k"), [(10, 10), (40, 5), (100, 20)])
def test_greedy_walk_reproduces_hnswlib(tmp_path, ef, k):
    _, index, path = _saved_graph(tmp_path, n=3000, dim=16, M=8, seed=3)
    graph = read_graph(path, 16)
    queries = _random_vectors(300, 16, seed=99)
    index.set_ef(ef)
    expected, _ = index.knn_query(queries, k=k, num_threads=1)
    same = np.mean([
        _reference_knn(graph, q, k, ef) == list(map(int, row))
        for q, row in zip(queries, expected, strict=True)
    ])
    # Threshold 0.99: distances are float32 sums in a different order than
    # hnswlib's SIMD kernel, so a near tie could in principle flip; on this seeded
    # data every query matches exactly.
    assert same >= 0.99


def test_spare_capacity_deleted_mark_and_empty_index(tmp_path):
    vectors = _random_vectors(40, 4, seed=1)
    index = hnswlib.Index(space="l2", dim=4)
    index.init_index(max_elements=100, M=4, ef_construction=20, random_seed=1)
    index.add_items(vectors, np.arange(40), num_threads=1)
    index.mark_deleted(5)
    save(index, tmp_path / "a.bin")
    graph = read_graph(tmp_path / "a.bin", 4)
    assert graph.n_nodes == 40
    np.testing.assert_array_equal(np.flatnonzero(graph.deleted), [5])

    empty = hnswlib.Index(space="l2", dim=4)
    empty.init_index(max_elements=10)
    save(empty, tmp_path / "empty.bin")
    graph = read_graph(tmp_path / "empty.bin", 4)
    assert graph.n_nodes == 0 and graph.entry_point == -1 and graph.max_level == -1
    assert graph.vectors.shape == (0, 4)


def _corrupt(path, out, edit):
    raw = bytearray(path.read_bytes())
    edit(raw)
    out.write_bytes(bytes(raw))
    return out


def _header_offsets():
    names = ["offset_level0", "max_elements", "cur", "record", "label_offset",
             "offset_data", "max_level", "entry", "max_m", "max_m0", "m", "mult", "efc"]
    sizes = [8, 8, 8, 8, 8, 8, 4, 4, 8, 8, 8, 8, 8]
    return dict(zip(names, np.cumsum([0, *sizes[:-1]]).tolist(), strict=True))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda raw: raw.__delitem__(slice(50, None)), "at least 96 bytes"),
        (lambda raw: raw.__delitem__(slice(-7, None)), "truncated|corrupted"),
        (lambda raw: raw.__delitem__(slice(2000, None)), "truncated"),
        (lambda raw: raw.extend(b"\0" * 8), "trailing bytes"),
        (lambda raw: struct.pack_into("<Q", raw, _header_offsets()["offset_data"], 12),
         "offsetData"),
        (lambda raw: struct.pack_into("<Q", raw, _header_offsets()["cur"], 10**9),
         "cur_element_count|truncated"),
        (lambda raw: struct.pack_into("<Q", raw, _header_offsets()["max_m0"], 0), "maxM0"),
        (lambda raw: struct.pack_into("<I", raw, _header_offsets()["entry"], 10**6),
         "enterpoint_node"),
        (lambda raw: struct.pack_into("<I", raw, 96, 500), "neighbour count"),
        (lambda raw: struct.pack_into("<I", raw, 100, 10**6), "neighbours must be"),
    ],
)
def test_corrupted_files_raise_value_error(tmp_path, edit, match):
    _, _, path = _saved_graph(tmp_path, n=200, dim=4, M=4)
    bad = _corrupt(path, tmp_path / "bad.bin", edit)
    with pytest.raises(ValueError, match=match):
        read_graph(bad, 4)


def test_corrupted_upper_level_record(tmp_path):
    _, _, path = _saved_graph(tmp_path, n=300, dim=4, M=4)
    ref = _slow_parse(path)
    n, record = 300, HEADER.unpack_from(path.read_bytes())[3]
    node = int(np.flatnonzero(np.array(ref["levels"]) > 0)[0])
    # Size word of the node's upper record: every earlier record is 4 bytes plus
    # its links.
    before = sum(4 + lv * 4 * (4 + 1) for lv in ref["levels"][:node])
    offset = 96 + n * record + before

    def grow(raw):
        struct.pack_into("<I", raw, offset, 7)

    with pytest.raises(ValueError, match="multiple of"):
        read_graph(_corrupt(path, tmp_path / "bad.bin", grow), 4)


def test_dim_mismatch_and_neighbor_errors(tmp_path):
    _, _, path = _saved_graph(tmp_path, n=100, dim=4, M=4)
    with pytest.raises(ValueError, match="dim must match the index file's dimension 4"):
        read_graph(path, 5)
    graph = read_graph(path, 4)
    with pytest.raises(ValueError, match="level must be an int in"):
        graph.neighbors(graph.max_level + 1, graph.entry_point)
    low = int(np.flatnonzero(graph.levels == 0)[0])
    if graph.max_level >= 1:
        with pytest.raises(ValueError, match="present on level 1"):
            graph.neighbors(1, low)
    with pytest.raises(ValueError, match="present on level 0"):
        graph.neighbors(0, 100)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(vectors=np.zeros(5, np.float32)), ValueError, "non-empty 2-D"),
        (dict(vectors=np.zeros((0, 3), np.float32)), ValueError, "non-empty 2-D"),
        (dict(vectors=np.ones((3, 2), np.int64)), TypeError, "floating dtype"),
        (dict(vectors=np.array([[0.0, 1.0], [np.nan, 0.0]])), ValueError, "row 1"),
        (dict(labels=[0, 1, 1]), ValueError, "distinct. Got 1"),
        (dict(labels=[0, -1, 2]), ValueError, "non-negative"),
        (dict(labels=[0, 1]), ValueError, r"shape \(3,\)"),
        (dict(labels=[0.0, 1.0, 2.0]), TypeError, "integer dtype"),
        (dict(M=1), ValueError, r"M must be an int in \[2, inf\)"),
        (dict(ef_construction=0), ValueError, "ef_construction"),
        (dict(seed=1.5), TypeError, "seed must be an int"),
    ],
)
def test_build_index_rejects_bad_input(kwargs, error, match):
    args = dict(vectors=np.ones((3, 2), np.float32), labels=None)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        build_index(**args)


def test_save_rejects_non_index(tmp_path):
    with pytest.raises(TypeError, match=r"hnswlib\.Index"):
        save(object(), tmp_path / "x.bin")
