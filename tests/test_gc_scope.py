"""wfst.gc_scope: the objects older than a CUDA run are frozen while it runs, and only then."""

import gc
import weakref

import pytest

from wfst.gc_scope import objects_older_than_the_run_frozen


class _Node:
    pass


def _cycle() -> weakref.ref:
    """A reference cycle that is garbage at once; a weak reference to it."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def _collector_as_found():
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    yield
    gc.unfreeze()
    gc.enable()


def test_old_objects_wait_for_the_end_of_the_run_and_young_ones_are_collected_in_it():
    old = _cycle()
    stats = {}
    with objects_older_than_the_run_frozen(stats):
        assert gc.get_freeze_count() > 0
        young = _cycle()
        gc.collect()
        assert young() is None  # the run's own garbage goes
        assert old() is not None  # the older objects are not scanned
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert old() is None  # nothing is kept from collection past the run
    assert stats["gc_seconds"] > 0


def test_nested_and_overlapping_runs_share_one_freeze():
    with objects_older_than_the_run_frozen():
        frozen = gc.get_freeze_count()
        with objects_older_than_the_run_frozen():
            pass
        assert gc.get_freeze_count() == frozen  # the inner run's end does not unfreeze the outer's
    assert gc.get_freeze_count() == 0


def test_a_freeze_made_by_someone_else_is_left_as_it_is_for_good(monkeypatch):
    from wfst import gc_scope

    monkeypatch.setattr(gc_scope, "_frozen_by_others", False)
    gc.freeze()
    frozen = gc.get_freeze_count()
    with objects_older_than_the_run_frozen():
        pass
    assert gc.get_freeze_count() == frozen
    gc.unfreeze()
    with objects_older_than_the_run_frozen():
        assert gc.get_freeze_count() == 0  # (not counted again: counting walks every frozen object)


def test_a_disabled_collector_is_left_alone():
    gc.disable()
    with objects_older_than_the_run_frozen():
        assert gc.get_freeze_count() == 0
    assert not gc.isenabled()


def test_the_freeze_and_the_timer_end_when_the_run_raises():
    callbacks = list(gc.callbacks)
    with pytest.raises(RuntimeError):
        with objects_older_than_the_run_frozen({}):
            raise RuntimeError("midway")
    assert gc.get_freeze_count() == 0 and gc.callbacks == callbacks


def test_gc_seconds_is_the_total_of_the_run_s_collections(monkeypatch):
    """stats["gc_seconds"] adds up every collection during the run, not only the
    last: on a clock that moves 1 s per reading, two collections make >= 2 s."""
    from types import SimpleNamespace

    from wfst import gc_scope

    clock = iter(range(10**6))
    monkeypatch.setattr(gc_scope, "time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    stats = {}
    with objects_older_than_the_run_frozen(stats):
        gc.collect()
        gc.collect()
    assert stats["gc_seconds"] >= 2.0
