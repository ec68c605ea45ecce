"""The in-process index: exact up to a size, HNSW past it, per collection, and idempotent under changes that arrive
twice (a replica applies its own enrollments at once and again when it reads them back from the database)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from service.vector_index import CollectionIndex, IndexParams, VectorIndex

PARAMS = IndexParams(exact_max=50, hnsw_m=16, hnsw_ef_construction=64, hnsw_ef_search=64, rebuild_removed_share=0.1)


# The store's highest face id ever given out, above every id these tests use.
MARK = 10_000


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_small_indexes_are_exact_and_large_ones_hnsw_with_the_same_answers() -> None:
    vecs = unit_vectors(400)
    ids = np.arange(1000, 1400, dtype=np.int64)
    exact, approx = VectorIndex(32, PARAMS, expected=10), VectorIndex(32, PARAMS, expected=400)
    assert not exact.approximate and approx.approximate
    for index in (exact, approx):
        index.add(ids, vecs)
        scores, found = index.search(vecs[:20], 3)
        assert found[:, 0].tolist() == ids[:20].tolist() and np.allclose(scores[:, 0], 1.0, atol=1e-5)


def test_adding_twice_and_removing_what_is_absent_change_nothing() -> None:
    vecs = unit_vectors(100)
    ids = np.arange(100, dtype=np.int64)
    for expected in (0, 100):  # exact, then HNSW (which cannot drop nodes and filters them out instead)
        index = VectorIndex(32, PARAMS, expected=expected)
        index.add(ids, vecs)
        index.add(ids[:10], vecs[:10])
        assert index.size == 100
        index.remove([5, 6, 999])
        assert index.size == 98
        _, found = index.search(vecs[5:7], 5)
        assert 5 not in found and 6 not in found
        if index.approximate:  # a removed node stays in the graph: a late duplicate of its enrollment stays out
            index.add(ids[5:6], vecs[5:6])
            assert index.size == 98


def test_a_search_sees_only_the_collections_it_is_given() -> None:
    vecs = unit_vectors(6)
    collections = np.array(["a", "a", "a", "b", "b", "c"])
    index = CollectionIndex.build(32, PARAMS, np.arange(6, dtype=np.int64), vecs, collections)
    assert index.size == 6 and index.size_of(["a", "b"]) == 5 and index.size_of(["zzz"]) == 0
    assert [i for _, i in index.search(vecs[3], 10, ["a"])] == sorted(
        [0, 1, 2], key=lambda i: -float(vecs[i] @ vecs[3])
    )
    assert index.search(vecs[3], 1, None)[0][1] == 3
    assert [i for _, i in index.search(vecs[3], 5, ["c"])] == [5]
    index.remove([5], "c")
    assert index.search(vecs[5], 5, ["c"]) == [] and index.size == 5


def test_hnsw_after_many_removals_still_answers_k_live_faces_nearest_first() -> None:
    vecs = unit_vectors(400, seed=1)
    ids = np.arange(400, dtype=np.int64)
    index = VectorIndex(32, PARAMS, expected=400)
    index.add(ids, vecs)
    removed = ids[::2]  # half the graph, the queries' own faces among them
    index.remove(removed.tolist())
    live = ids[1::2]
    scores, found = index.search(vecs[:20], 5)
    assert not np.isin(found, removed).any() and (found >= 0).all()
    exact = live[np.argsort(-(vecs[:20] @ vecs[live].T), axis=1)[:, :5]]
    assert np.mean([len(set(f) & set(e)) / 5 for f, e in zip(found.tolist(), exact.tolist(), strict=True)]) >= 0.95
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_an_exact_collection_that_outgrows_the_limit_becomes_a_graph_without_losing_changes() -> None:
    vecs = unit_vectors(120, seed=2)
    index = CollectionIndex(32, PARAMS)
    for start in range(0, 40, 10):  # 40 faces: below exact_max (50), exact
        index.add("c", np.arange(start, start + 10, dtype=np.int64), vecs[start : start + 10])
    index.wait_for_graphs()
    exact_part = index._parts["c"]
    assert not exact_part.approximate
    index.add("c", np.arange(40, 60, dtype=np.int64), vecs[40:60])  # 60 faces: the graph is built in the background
    # Changes while the graph is built (or just after) must all reach the part that ends up serving.
    index.add("c", np.arange(60, 80, dtype=np.int64), vecs[60:80])
    index.remove([0, 1, 61])
    index.wait_for_graphs(timeout_s=60)
    graph = index._parts["c"]
    assert graph is not exact_part and graph.approximate and index.size == 77
    index.add("c", np.arange(80, 90, dtype=np.int64), vecs[80:90])
    exact_part.add(np.arange(90, 95, dtype=np.int64), vecs[90:95])  # a writer still holding the old part
    index.remove([2])
    assert index.size == 91 and graph.ids() == set(range(3, 95)) - {61}
    for i in (3, 45, 70, 85, 93):
        assert index.search(vecs[i], 1, ["c"])[0][1] == i
    assert all(index.search(vecs[i], 1, ["c"])[0][1] != i for i in (0, 1, 2, 61))


def test_a_graph_kept_on_disk_is_read_back_and_brought_in_step_with_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vecs = unit_vectors(300, seed=3)
    ids = np.arange(1, 301, dtype=np.int64)
    names = np.array(["big"] * 200 + ["small"] * 100)
    first = CollectionIndex.build(32, PARAMS, ids[:250], vecs[:250], names[:250], tmp_path, MARK)
    assert first.save(tmp_path) == 1  # only the graph: "small" (50 faces) stays exact and is rebuilt in no time
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.faiss"]

    # Since the snapshot: faces 1-10 deleted, 11-20 enrolled in "big" (ids 301-310, new vectors).
    extra = unit_vectors(10, seed=4)
    now_ids = np.concatenate([ids[10:200], np.arange(301, 311)])
    now_vecs = np.concatenate([vecs[10:200], extra])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="service.vector_index"):
        again = CollectionIndex.build(32, PARAMS, now_ids, now_vecs, np.array(["big"] * 200), tmp_path, MARK)
    assert "graph read from disk, 10 face(s) added, 10 left out" in caplog.text
    assert again.size == 200
    for i in (0, 50, 195, 199):
        assert again.search(now_vecs[i], 1, ["big"])[0][1] == now_ids[i]
    assert all(again.search(vecs[i], 1, ["big"])[0][1] != ids[i] for i in range(10))

    # A snapshot whose vectors are not the store's (a restored backup, say) is refused and rebuilt.
    caplog.clear()
    moved = now_vecs.copy()
    moved[5] = unit_vectors(1, seed=5)[0]
    with caplog.at_level(logging.INFO, logger="service.vector_index"):
        rebuilt = CollectionIndex.build(32, PARAMS, now_ids, moved, np.array(["big"] * 200), tmp_path, MARK)
    assert "faces or vectors the store does not" in caplog.text and "read from disk" not in caplog.text
    assert rebuilt.search(moved[5], 1, ["big"])[0][1] == now_ids[5]

    # A graph holding a face id the store never gave out (a backup restored over a newer gallery) is refused too.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="service.vector_index"):
        CollectionIndex.build(32, PARAMS, now_ids, now_vecs, np.array(["big"] * 200), tmp_path, 150)
    assert "faces or vectors the store does not" in caplog.text

    # An unreadable file costs a rebuild, nothing else.
    (tmp_path / "big.faiss").write_bytes(b"not a graph")
    assert CollectionIndex.build(32, PARAMS, now_ids, now_vecs, np.array(["big"] * 200), tmp_path, MARK).size == 200


def test_a_graph_read_back_unchanged_is_not_written_again_and_one_with_many_deletions_is_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vecs = unit_vectors(200, seed=6)
    ids = np.arange(1, 201, dtype=np.int64)
    names = np.array(["big"] * 200)
    assert CollectionIndex.build(32, PARAMS, ids, vecs, names, tmp_path, MARK).save(tmp_path) == 1
    read_back = CollectionIndex.build(32, PARAMS, ids, vecs, names, tmp_path, MARK)
    assert read_back.save(tmp_path) == 0  # nothing changed since it was written
    read_back.remove([1])
    assert read_back.save(tmp_path) == 1

    # 30 of 200 faces deleted since (15 % > 10 %): the graph is compacted by a rebuild instead of read back.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="service.vector_index"):
        compacted = CollectionIndex.build(32, PARAMS, ids[30:], vecs[30:], names[30:], tmp_path, MARK)
    assert "many deleted faces" in caplog.text and "read from disk" not in caplog.text
    assert compacted.size == 170 and compacted.search(vecs[40], 1, ["big"])[0][1] == ids[40]


def test_concurrent_searches_on_a_graph_with_removed_faces_never_return_them() -> None:
    # faiss points a search's ID selector at a stack object for the length of the search: searches that shared one
    # parameters object handed each other dangling selectors (deleted faces returned, or a crash).
    vecs = unit_vectors(2000, seed=7)
    index = VectorIndex(32, PARAMS, expected=2000)
    index.add(np.arange(2000, dtype=np.int64), vecs)
    removed = set(range(0, 2000, 2))
    index.remove(sorted(removed))
    returned: list[set[int]] = []
    stop = threading.Event()

    def search(seed: int) -> None:
        rng = np.random.default_rng(seed)
        while not stop.is_set():
            _, found = index.search(vecs[rng.integers(0, 2000, 1)], 10)
            returned.append(set(found.ravel().tolist()) & removed)

    threads = [threading.Thread(target=search, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join()
    assert len(returned) > 1000 and not any(returned)


def test_an_index_no_longer_served_builds_no_graph() -> None:
    vecs = unit_vectors(60, seed=8)
    index = CollectionIndex(32, PARAMS)
    index.close()  # replaced by a model switch
    index.add("c", np.arange(60, dtype=np.int64), vecs)
    index.wait_for_graphs(timeout_s=10)
    assert not index._parts["c"].approximate and index.search(vecs[7], 1, ["c"])[0][1] == 7


def test_a_shadow_index_is_brought_in_step_with_the_store_before_it_serves() -> None:
    vecs = unit_vectors(120, seed=9)
    ids = np.arange(120, dtype=np.int64)
    names = np.array(["a"] * 60 + ["b"] * 40 + ["c"] * 20)
    shadow = CollectionIndex.build(32, PARAMS, ids[:100], vecs[:100], names[:100])  # "a" a graph, "b" exact
    # Meanwhile: faces 0-4 ("a") and all of "b" deleted, 100-119 enrolled into a new collection "c".
    keep = np.r_[5:60, 100:120]
    shadow.sync(ids[keep], vecs[keep], names[keep])
    assert shadow.size == 75 and shadow.size_of(["b"]) == 0 and shadow.size_of(["c"]) == 20
    assert shadow.search(vecs[110], 1, ["c"])[0][1] == 110 and shadow.search(vecs[30], 1, ["a"])[0][1] == 30
    assert all(shadow.search(vecs[i], 1, None)[0][1] != i for i in range(5))
