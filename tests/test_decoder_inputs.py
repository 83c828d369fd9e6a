"""Bad input gets a typed error; edge cases (zero frames, no final state reached,
dead ends) give a Result, never an exception."""

import dataclasses

import numpy as np
import pytest

import wfst
from tests.decoder_graphs import epsilon_fan_in, flat_scores, graph

LOOP = graph(2, 0, {1: 0.0}, [(0, 1, 1, 5, 0.5), (1, 1, 2, 0, 0.25), (1, 1, 1, 6, 1.0)])


def decoder(fst=LOOP, **kw):
    return wfst.Decoder(fst, wfst.DecoderConfig(**kw), device="cpu")


@pytest.mark.parametrize("scores, message", [
    (np.zeros((3, 2), np.int32), "float16, float32 or float64"),
    (np.zeros(3, np.float32), "2-D"),
    (np.zeros((1, 3, 2), np.float32), "2-D"),
    (np.array([[0.0, np.nan]], np.float32), "scores\\[0, 1\\] is nan"),
    (np.array([[0.0, 0.0], [-np.inf, 0.0]], np.float64), "scores\\[1, 0\\] is -inf"),
    (np.array([[0.0, 1e300]]), "is 1e.300, beyond float32's range"),
    (np.array([[0.0, 0.0], [1e10, 0.0]], np.float32),
     "scores\\[1, 0\\] is 10000000000.0: scores above 1e.06 are refused"),
    (np.zeros((4, 1), np.float32), "has 1 columns .* at least 2"),
    (np.array([[0.25, 0.75], [1.0, 0.0]], np.float16), "looks like probabilities .*log_softmax, not softmax"),
    ("not an array", "2-D array"),
    (np.array([[0.0, 1.0], [np.nan, np.inf]], np.float32), "scores\\[1, 0\\] is nan"),  # the first bad one
])
def test_bad_scores(scores, message):
    with pytest.raises(wfst.ScoresError, match=message):
        decoder().decode(scores)


def test_scores_far_below_zero_are_fine_and_up_to_the_limit():
    """Scores above LOGLIKE_MAX are refused (above), large negative ones are
    not: they only make a path expensive (here the only one, which is kept)."""
    result = decoder().decode(np.array([[-1e30, 1e6]], np.float32))
    assert result.words == (5,) and result.reached_final and result.cost == float(np.float32(1e30))


def test_rows_that_only_nearly_sum_to_one_or_dip_below_zero_are_not_probabilities():
    """Only non-negative rows that all sum to 1 are refused: a log-likelihood row may be positive."""
    for scores in ([[0.3, 0.6], [0.5, 0.5]], [[-0.1, 1.1], [0.5, 0.5]], [[0.0, 0.0], [0.0, 0.0]]):
        assert decoder().decode(np.array(scores, np.float32)).words == (5,)


def test_an_empty_batch_gives_no_results_on_any_thread_count():
    for threads in (1, 2):
        assert wfst.Decoder(LOOP, device="cpu", threads=threads).decode([]) == []


def test_one_bad_matrix_in_a_batch_names_it_and_decodes_nothing():
    with pytest.raises(wfst.ScoresError, match=r"scores\[1\]"):
        decoder().decode([flat_scores(3), flat_scores(3)[:, :1]])


def test_scores_error_is_a_value_error():
    assert issubclass(wfst.ScoresError, ValueError) and issubclass(wfst.ScoresError, wfst.WfstError)
    assert issubclass(wfst.GraphError, ValueError) and issubclass(wfst.GraphError, wfst.WfstError)


def test_wider_scores_and_float64_are_fine():
    narrow = decoder().decode(flat_scores(3))
    wide = decoder().decode(np.pad(flat_scores(3), ((0, 0), (0, 3)), constant_values=-5.0).astype(np.float64))
    assert wide.words == narrow.words == (5,)
    swapped = decoder().decode(flat_scores(3).astype(">f4"))  # big-endian, as some archives hold it
    assert swapped.words == narrow.words and swapped.cost == narrow.cost


def test_negative_epsilon_cycle_is_refused():
    fst = graph(3, 0, {2: 0.0}, [(0, 1, 1, 0, 0.0), (1, 2, 0, 0, -1.0), (2, 1, 0, 0, 0.5), (2, 2, 1, 0, 0.0)])
    with pytest.raises(wfst.GraphError, match="negative-cost epsilon cycle"):
        decoder(fst)


def test_negative_epsilon_self_loop_is_refused():
    with pytest.raises(wfst.GraphError, match="negative-cost epsilon cycle through state 0"):
        decoder(graph(1, 0, {0: 0.0}, [(0, 0, 0, 0, -0.1)]))


def test_zero_cost_epsilon_cycle_is_fine():
    fst = graph(3, 0, {2: 0.0}, [(0, 1, 1, 4, 0.0), (1, 2, 0, 0, 0.0), (2, 1, 0, 0, 0.0)])
    result = decoder(fst).decode(flat_scores(1, 1))
    assert result.reached_final and result.words == (4,) and result.cost == pytest.approx(0.0)


def test_a_state_lowered_by_many_epsilon_predecessors_is_no_negative_cycle():
    """The negative-cycle check counts the passes a token is queued in, not how
    often it is lowered (it raised GraphError here, on a graph without cycles)."""
    result = decoder(epsilon_fan_in()).decode(flat_scores(1, 1))
    assert result.reached_final and result.cost == pytest.approx(0.1)


def test_empty_graph_and_missing_start_are_refused():
    empty = wfst.CsrFst.from_arcs(0, -1, np.zeros(0, np.float32), *[np.zeros(0, np.int32)] * 4,
                                  np.zeros(0, np.float32))
    with pytest.raises(wfst.GraphError, match="no states"):
        decoder(empty)
    with pytest.raises(wfst.GraphError, match="no start state"):
        decoder(graph(2, -1, {1: 0.0}, [(0, 1, 1, 5, 0.5)]))


@pytest.mark.parametrize("field, value, message", [
    ("nextstate", 99, "nextstate.* not in \\[0, 2\\)"), ("start", 7, "start state 7"),
    ("start", 0.5, "start must be an integer"), ("start", None, "start must be an integer"),
    ("weight", np.nan, "weight.* must not be NaN"), ("olabel", -3, "olabel.* must be >= 0"),
])
def test_a_graph_built_in_memory_that_breaks_an_invariant_is_refused(field, value, message):
    """A CsrFst made in memory is not validated (files are, as they are read):
    the decoder checks it, where a state out of range was a crash and the rest
    silent garbage."""
    arrays = {name: getattr(LOOP, name).copy() for name in ("nextstate", "weight", "olabel")}
    if field == "start":
        broken = dataclasses.replace(LOOP, start=value)
    else:
        arrays[field][-1] = value
        broken = dataclasses.replace(LOOP, **arrays)
    with pytest.raises(wfst.FstFormatError, match=message):
        decoder(broken)


LARGE_COSTS = [(3e8, 15.0), (1e30, 15.0), (3e6, 0.1)]
"""(first arc's weight, beam) where float32 rounds cost + beam back to the cost."""


def large_cost_graph(weight):
    """0 -1:5/weight-> 1 -1:6/0-> 1 (final): the only path costs ``weight``."""
    return graph(2, 0, {1: 0.0}, [(0, 1, 1, 5, weight), (1, 1, 1, 6, 0.0)])


@pytest.mark.parametrize("weight, beam", LARGE_COSTS)
def test_costs_too_large_for_the_beam_keep_the_cheapest_path(weight, beam):
    """Where ``cheapest + beam`` rounds back to ``cheapest``, the bound is the
    float just above it: the cheapest path survives (every token was dropped,
    an empty Result, while the exact search and OpenFst find the path)."""
    result = decoder(large_cost_graph(weight), beam=beam, max_active=100, min_active=0).decode(
        np.zeros((3, 1), np.float32))
    assert result.words == (5, 6, 6) and result.reached_final and result.cost == float(np.float32(weight))


def test_not_a_graph_or_config():
    with pytest.raises(wfst.GraphError, match="wfst.CsrFst.*got str: read the file first"):
        wfst.Decoder("HCLG.fst")
    with pytest.raises(wfst.GraphError, match="wfst.CsrFst.*got NoneType$"):
        wfst.Decoder(None)
    with pytest.raises(wfst.ConfigError, match="DecoderConfig"):
        wfst.Decoder(LOOP, config={"beam": 10})
    with pytest.raises(wfst.ConfigError, match="device"):
        wfst.Decoder(LOOP, device="tpu")
    with pytest.raises(wfst.ConfigError, match="threads"):
        wfst.Decoder(LOOP, threads=0)


def test_pdf_map():
    # labels 1 and 2 both read column 0 through the map; column 1 is never read
    pdf_map = np.array([-1, 0, 0])
    scores = np.array([[-1.0, -100.0], [-2.0, -100.0]], np.float32)
    result = wfst.Decoder(LOOP, wfst.DecoderConfig(), device="cpu", pdf_map=pdf_map).decode(scores[:, :1])
    assert result.words == (5,)
    assert result.acoustic_cost == pytest.approx(3.0)
    with pytest.raises(wfst.GraphError, match="at least 3"):
        wfst.Decoder(LOOP, pdf_map=np.array([-1, 0]))
    with pytest.raises(wfst.GraphError, match="negative"):
        wfst.Decoder(LOOP, pdf_map=np.array([-1, 0, -1]))
    with pytest.raises(wfst.GraphError, match="1-D integer"):
        wfst.Decoder(LOOP, pdf_map=np.array([0.0, 1.0, 2.0]))
    with pytest.raises(wfst.GraphError, match=r"pdf_map\[2\] = 4294967297 is beyond"):  # not column 1, wrapped
        wfst.Decoder(LOOP, pdf_map=np.array([-1, 0, 2**32 + 1]))


def test_a_pdf_map_must_map_the_label_of_the_first_emitting_arc_too():
    """A negative pdf for an input label that only the first emitting arc reads
    is refused like any other used label's."""
    fst = graph(2, 0, {1: 0.0}, [(0, 1, 1, 5, 0.5), (1, 1, 2, 0, 0.25)])
    with pytest.raises(wfst.GraphError, match=r"pdf_map\[1\] = -1 is negative"):
        wfst.Decoder(fst, device="cpu", pdf_map=np.array([-1, -1, 0]))


def test_a_cpu_decoder_runs_one_thread_unless_told_and_threads_are_whole_numbers():
    """threads: 1 by default on the CPU (as documented), else the whole number
    >= 1 given; 2.5, True or "2" are refused."""
    assert wfst.Decoder(LOOP, device="cpu").threads == 1
    assert wfst.Decoder(LOOP, device="cpu", threads=np.int64(3)).threads == 3
    for bad in (2.5, True, "2"):
        with pytest.raises(wfst.ConfigError, match="threads"):
            wfst.Decoder(LOOP, device="cpu", threads=bad)


def test_zero_frames_decide_by_the_start_closure():
    fst = graph(3, 0, {1: 0.25}, [(0, 1, 0, 3, 0.5), (0, 2, 0, 4, 0.1), (1, 1, 1, 0, 0.0)])
    result = decoder(fst).decode(np.zeros((0, 1), np.float32))
    assert result.reached_final
    assert result.words == (3,)
    assert result.cost == pytest.approx(0.75)
    assert result.alignment.shape == (0,)
    assert result.word_frames == ((0, 0),)


def test_no_final_state_reached_gives_the_best_token():
    fst = graph(3, 0, {2: 0.0}, [(0, 1, 1, 7, 1.0), (0, 1, 2, 8, 0.5), (1, 1, 1, 0, 0.0), (1, 2, 2, 9, 0.0)])
    result = decoder(fst).decode(np.log(np.full((3, 2), 0.5, np.float32)))
    assert result.reached_final
    stuck = decoder(fst).decode(np.log(np.full((1, 2), 0.5, np.float32)))
    assert not stuck.reached_final
    assert stuck.words == (8,)
    assert stuck.cost == pytest.approx(0.5 - np.log(0.5))


def test_dead_end_gives_an_empty_result():
    fst = graph(2, 0, {1: 0.0}, [(0, 1, 1, 7, 1.0)])
    result = decoder(fst).decode(flat_scores(3, 1))
    assert result.words == () and result.cost == float("inf") and not result.reached_final
    assert result.alignment.shape == (3,)


class _GradTensor:
    """Stands in for a torch tensor that requires grad: it refuses __array__
    (as torch does) until detached."""

    requires_grad = True

    def __init__(self, array):
        self._array = array

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")

    def detach(self):
        return self._array


def test_scores_that_require_grad_are_detached():
    fst = graph(2, 0, {1: 0.0}, [(0, 1, 1, 1, 0.5), (1, 1, 1, 0, 0.25)])
    decoder = wfst.Decoder(fst, device="cpu")
    scores = flat_scores(4)
    assert decoder.decode(_GradTensor(scores)).words == decoder.decode(scores).words == (1,)


def _two_finals(w5=0.0, w6=0.0, f5=0.0, f6=0.0):
    """Word 6's arc (to state 2) comes first: the lowest arc index and the lowest state disagree."""
    return graph(3, 0, {1: f5, 2: f6}, [(0, 2, 1, 6, w6), (0, 1, 1, 5, w5)])


def test_equal_final_totals_pick_the_lowest_state_in_results_and_partials():
    decoder = wfst.Decoder(_two_finals(), device="cpu")
    assert decoder.decode(flat_scores(1, 1)).words == (5,)
    with decoder.stream() as stream:
        stream.accept(flat_scores(1, 1))
        assert stream.partial().words == (5,)


@pytest.mark.parametrize("how", ["weight", "final"])
def test_a_path_exactly_lattice_beam_behind_the_best_stays_in_the_lattice(how):
    fst = _two_finals(w6=2.0) if how == "weight" else _two_finals(f6=2.0)
    result = wfst.Decoder(fst, wfst.DecoderConfig(lattice_beam=2.0), device="cpu").decode(flat_scores(1, 1))
    assert sorted(p.words for p in result.lattice.nbest(5)) == [(5,), (6,)]
    result = wfst.Decoder(fst, wfst.DecoderConfig(lattice_beam=1.99), device="cpu").decode(flat_scores(1, 1))
    assert [p.words for p in result.lattice.nbest(5)] == [(5,)]


def test_an_arc_exactly_beam_behind_the_best_is_not_taken():
    fst = graph(3, 0, {1: 0.0, 2: 0.0}, [(0, 1, 1, 5, 0.0), (0, 2, 1, 6, 2.0)])
    config = wfst.DecoderConfig(beam=2.0, min_active=0, lattice_beam=10.0)
    result = wfst.Decoder(fst, config, device="cpu").decode(flat_scores(1, 1))
    assert [p.words for p in result.lattice.nbest(5)] == [(5,)]  # 0 + 2 is not < best + beam


def test_an_epsilon_cycle_negative_only_in_float32_is_a_graph_error():
    w = 0.39500877  # 1 -> 2 -> 1 sums to 0 in float64; in float32 (0.683546 + w) - w < 0.683546
    fst = graph(3, 0, {1: 0.0}, [(0, 1, 1, 0, 0.683546), (1, 2, 0, 0, w), (2, 1, 0, 0, -w)])
    with pytest.raises(wfst.GraphError, match="float32"):
        wfst.Decoder(fst, device="cpu").decode(flat_scores(1, 1))


@pytest.mark.parametrize("finals,arcs,longer", [
    # 0 -1:5/0-> 1 (final); 1 -eps:6/2-> 2 (final): state 2 costs best + beam
    ({1: 0.0, 2: 0.0}, [(0, 1, 1, 5, 0.0), (1, 2, 0, 6, 2.0)], (5, 6)),
    # the start frame's closure, whose bound is the beam itself: 0 -eps:6/2-> 1 costs 0 + beam; from there
    # 1 -1:7/-1-> 2 (final) would come within the beam of 0 -1:5/0-> 2
    ({2: 0.0}, [(0, 1, 0, 6, 2.0), (0, 2, 1, 5, 0.0), (1, 2, 1, 7, -1.0)], (6, 7)),
], ids=["frame 1", "start frame"])
def test_an_epsilon_arc_exactly_beam_behind_the_best_is_not_taken(finals, arcs, longer):
    fst = graph(3, 0, finals, arcs)
    config = wfst.DecoderConfig(beam=2.0, min_active=0, lattice_beam=10.0)
    result = wfst.Decoder(fst, config, device="cpu").decode(flat_scores(1, 1))
    assert [p.words for p in result.lattice.nbest(5)] == [(5,)]
    config = wfst.DecoderConfig(beam=2.01, min_active=0, lattice_beam=10.0)
    result = wfst.Decoder(fst, config, device="cpu").decode(flat_scores(1, 1))
    assert sorted(p.words for p in result.lattice.nbest(5)) == sorted([(5,), longer])


def test_an_epsilon_link_to_a_kept_token_exactly_at_the_bound_is_not_made():
    # 0 -1:7/1-> 2 keeps state 2 (cost 1, below the bound 0 + beam = 2); 0 -1:5/0-> 1 -eps:6/2-> 2 reaches it
    # again at exactly the bound: no link, so no path (5, 6) in the lattice
    fst = graph(3, 0, {1: 0.0, 2: 0.0}, [(0, 1, 1, 5, 0.0), (0, 2, 1, 7, 1.0), (1, 2, 0, 6, 2.0)])
    config = wfst.DecoderConfig(beam=2.0, min_active=0, lattice_beam=10.0)
    result = wfst.Decoder(fst, config, device="cpu").decode(flat_scores(1, 1))
    assert sorted(p.words for p in result.lattice.nbest(5)) == [(5,), (7,)]
    config = wfst.DecoderConfig(beam=2.01, min_active=0, lattice_beam=10.0)
    result = wfst.Decoder(fst, config, device="cpu").decode(flat_scores(1, 1))
    assert sorted(p.words for p in result.lattice.nbest(5)) == [(5,), (5, 6), (7,)]


def test_the_start_frame_s_closure_goes_no_further_than_the_beam():
    # 0 -eps:5/0-> 1; 0 -eps/3-> 2 -eps:6/-2-> 4; 1 and 4 -1/0-> 3 (final): state 4 costs 1, but only
    # through state 2, which lies beyond the beam of 2
    fst = graph(5, 0, {3: 0.0}, [(0, 1, 0, 5, 0.0), (0, 2, 0, 0, 3.0), (2, 4, 0, 6, -2.0), (1, 3, 1, 0, 0.0),
                                 (4, 3, 1, 0, 0.0)])
    config = wfst.DecoderConfig(beam=2.0, min_active=0, lattice_beam=10.0)
    result = wfst.Decoder(fst, config, device="cpu").decode(flat_scores(1, 1))
    assert [p.words for p in result.lattice.nbest(5)] == [(5,)]
    config = wfst.DecoderConfig(beam=3.01, min_active=0, lattice_beam=10.0)
    result = wfst.Decoder(fst, config, device="cpu").decode(flat_scores(1, 1))
    assert sorted(p.words for p in result.lattice.nbest(5)) == [(5,), (6,)]


def test_emitting_arcs_are_bounded_by_the_adaptive_beam_once_max_active_caps_a_frame():
    # frame 1 holds states 1, 2, 3 at costs 0, 1, 2; max_active 1 puts its cutoff at 1 and its adaptive beam
    # at 1 - 0 + 0.5 = 1.5, so frame 2 takes 1 -1:8/1.6-> 4 only if the bound is the beam of 10, not 1.5
    arcs = [(0, 1, 1, 5, 0.0), (0, 2, 1, 6, 1.0), (0, 3, 1, 7, 2.0), (1, 1, 1, 0, 0.0), (1, 4, 1, 8, 1.6),
            (2, 2, 1, 0, 0.0), (3, 3, 1, 0, 0.0)]
    fst = graph(5, 0, {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}, arcs)
    config = wfst.DecoderConfig(beam=10.0, max_active=1, min_active=0, lattice_beam=10.0)
    result = wfst.Decoder(fst, config, device="cpu").decode(flat_scores(2, 1))
    assert sorted(p.words for p in result.lattice.nbest(10)) == [(5,), (6,)]
    arcs[4] = (1, 4, 1, 8, 1.4)  # within the adaptive beam
    result = wfst.Decoder(graph(5, 0, {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0}, arcs), config,
                          device="cpu").decode(flat_scores(2, 1))
    assert sorted(p.words for p in result.lattice.nbest(10)) == [(5,), (5, 8), (6,)]


def test_the_emitting_bound_comes_from_the_expanded_tokens_alone():
    # frame 1 holds states 1, 2, 3 at costs 0, 1, 2; max_active 1 puts its cutoff at 1 (state 2's cost: expanded,
    # as Kaldi's <=) and its adaptive beam at 1.5. The cheapest arc of the expanded tokens, 2 -1:8/-2-> 4 (cost
    # -1), sets the bound -1 + 1.5 = 0.5: state 1's loop (0) stays, state 2's loop (1) does not. State 3 is not
    # expanded, so its cheaper arc 3 -1:9/-10-> 5 (cost -8) sets nothing
    arcs = [(0, 1, 1, 5, 0.0), (0, 2, 1, 6, 1.0), (0, 3, 1, 7, 2.0), (1, 1, 1, 0, 0.0), (2, 2, 1, 0, 0.0),
            (2, 4, 1, 8, -2.0), (3, 3, 1, 0, 0.0), (3, 5, 1, 9, -10.0)]
    fst = graph(6, 0, {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 0.0}, arcs)
    config = wfst.DecoderConfig(beam=10.0, max_active=1, min_active=0, lattice_beam=10.0)
    result = wfst.Decoder(fst, config, device="cpu").decode(flat_scores(2, 1))
    assert result.words == (6, 8) and result.cost == -1.0
    assert sorted(p.words for p in result.lattice.nbest(10)) == [(5,), (6, 8)]


def test_a_decoder_is_called_as_its_decode():
    from tests.decoder_graphs import assert_same_results

    d = wfst.Decoder(LOOP, device="cpu")
    scores = flat_scores(3)
    assert_same_results(d(scores), d.decode(scores))
    for got, want in zip(d([scores, scores[:1]]), d.decode([scores, scores[:1]]), strict=True):
        assert_same_results(got, want)
