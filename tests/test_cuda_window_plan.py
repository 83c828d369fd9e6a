"""The host's plan of the CUDA backend's lattice windows
(:mod:`wfst.cuda_window_plan`), against a per-lane model written with lists:
which lanes flush, whether each keeps or sends, what each keeps back and
sends, and the window slots of the lane parameters."""

import numpy as np
import pytest

from wfst import cuda_layout as layout
from wfst.cuda_window_plan import flushes, frames_kept_back, plan_windows


def test_a_flush_keeps_back_at_most_half_the_pool_and_sends_a_frame():
    def kept(sizes, frames, most):
        return frames_kept_back(np.array(sizes + [(0, 0)] * 4, np.int64), frames, most, 100, 40)

    assert kept([(5, 9)] * 6, 6, 4) == 2  # half the pool's 40 links: 2 frames
    assert kept([(30, 1)] * 6, 6, 4) == 1  # half the pool's 100 tokens: 1 frame
    assert kept([(25, 10)] * 6, 6, 4) == 2 and kept([(1, 20)] * 6, 6, 4) == 1  # exactly half of either: kept
    assert kept([(1, 1)], 1, 4) == 0  # one frame: it is sent
    assert kept([(1, 1)] * 3, 3, 4) == 2  # all but one frame
    assert kept([(1, 1)] * 6, 6, 4) == 4  # at most `most`
    assert kept([(5, 9)] * 6, 6, 1) == 1


def test_the_start_frame_counts_as_row_minus_one_in_the_stagger():
    # Python's modulo: (row + lane) % period for row -1 on lane 0 is period - 1
    assert flushes(1, 0, 0, -1, 0, 32, 40, 10, 10, 4)
    assert not flushes(1, 0, 0, -1, 1, 32, 40, 10, 10, 4)
    assert flushes(1, 0, 0, 30, 1, 32, 40, 10, 10, 4)


def test_a_window_flushes_when_it_holds_W_frames_or_its_pool_cannot_take_a_frame():
    # row 0 on lane 0 with period 32: not a regular flush; W = 40, Q = X = 10, a pool of 4 frames
    assert not flushes(39, 0, 0, 0, 0, 32, 40, 10, 10, 4)
    assert flushes(40, 0, 0, 0, 0, 32, 40, 10, 10, 4)
    assert not flushes(1, 30, 30, 0, 0, 32, 40, 10, 10, 4) and flushes(1, 31, 0, 0, 0, 32, 40, 10, 10, 4)
    assert flushes(1, 0, 31, 0, 0, 32, 40, 10, 10, 4)


class _Lane:
    """One lane's pool in the model: the frames kept (count, tokens, links; None:
    not reported yet) and the window's, a list of (tokens, links) frames."""

    def __init__(self):
        self.kept, self.kept_sizes, self.frames, self.starts = 0, (0, 0), [], False


def _words(frames, tokens, links):
    return 3 * frames + 3 * tokens + 5 * links


def _model_step(lanes, good, ended, finishing, row, sizes, channels, period, most, Q, X, pool_tokens, pool_links, W,
                TF, packed_words):
    """The plan of one step, lane by lane: (window slots of params, sent channels, starts, keeping lanes, words,
    lanes sent early)."""
    slots, plans, after = [], [], []
    for lane, w in enumerate(lanes):
        held = np.array(w.kept_sizes, np.int64) + np.sum(w.frames + [(0, 0)], axis=0, dtype=np.int64)
        slot = [w.kept + len(w.frames) if good[lane] else -1, held[0], held[1], layout.FLUSH_NONE, 0, w.kept]
        kind, lag, holds = layout.FLUSH_NONE, 0, 0
        if good[lane]:
            if not w.kept and not w.frames:
                w.starts = row[lane] < 0
            w.frames.append(tuple(sizes[lane]))
            held = held + sizes[lane]
            n = len(w.frames)
            regular = (row[lane] + lane) % period == period - 1
            full = n >= W or held[0] + Q > (pool_tokens // Q) * Q or held[1] + X > (pool_links // X) * X
            if ended[lane] or regular or full:
                while (not ended[lane] and lag < most and n - (lag + 1) >= 1
                       and np.all(np.sum(w.frames[n - lag - 1:], axis=0) <= [pool_tokens // 2, pool_links // 2])):
                    lag += 1
                if ended[lane]:
                    kind = layout.FLUSH_FINAL if finishing[lane] else layout.FLUSH_SEND
                elif w.kept + n - lag + W <= TF and held[0] + Q <= pool_tokens and held[1] + X <= pool_links:
                    kind = layout.FLUSH_KEEP
                else:
                    kind = layout.FLUSH_SEND
            if kind in (layout.FLUSH_NONE, layout.FLUSH_KEEP):
                holds = _words(w.kept + n, *held)
            elif not ended[lane]:
                holds = sum(_words(1, t, x) for t, x in w.frames[n - lag:])
        elif not ended[lane]:  # a lane that searched no frame keeps what it holds
            holds = _words(w.kept + len(w.frames), *held)
        slots.append(slot)
        plans.append([kind, lag])
        after.append(holds)
    # early sends: the lanes that hold most (the lower lane first among equals) until the next step surely fits
    early = []
    need = layout.WINDOW_HEADER + sum(after) + len(lanes) * (2 + _words(1, Q, X))
    for lane in sorted(range(len(lanes)), key=lambda k: -after[k]):
        if need <= packed_words or not after[lane]:
            break
        if good[lane] and not ended[lane]:
            plans[lane] = [layout.FLUSH_SEND, 0]
            need -= after[lane]
            early.append(lane)
    assert need <= packed_words
    sent_channels, sent_starts, keepers, tokens, links = [], [], [], 0, 0
    for lane, w in enumerate(lanes):
        kind, lag = plans[lane]
        slots[lane][3:5] = [kind, lag]
        if kind != layout.FLUSH_NONE:
            n = len(w.frames)
            moved, w.frames = w.frames[:n - lag], w.frames[n - lag:]
            if kind == layout.FLUSH_KEEP:
                keepers.append(lane)
                w.kept += len(moved)
                w.kept_sizes = None
            else:
                sent_channels += [channels[lane]] * (w.kept + len(moved))
                sent_starts += [w.starts] + [False] * (w.kept + len(moved) - 1)
                tokens += w.kept_sizes[0] + sum(t for t, _ in moved)
                links += w.kept_sizes[1] + sum(x for _, x in moved)
                w.kept, w.kept_sizes, w.starts = 0, (0, 0), False
        if ended[lane]:
            w.kept, w.kept_sizes, w.frames, w.starts = 0, (0, 0), [], False
    words = (layout.WINDOW_HEADER + 2 * len(keepers) + _words(len(sent_channels), tokens, links)
             if sent_channels or keepers else 0)
    return slots, sent_channels, sent_starts, keepers, words, early


@pytest.mark.parametrize("room", [None, 0, 1])
@pytest.mark.parametrize("seed", range(6))
def test_the_plan_matches_a_lane_by_lane_model(seed, room):
    """``room``: worst-case frames per lane the packed buffer holds beyond the
    one each lane may add (None: ample): with less, lanes send early, and no
    step's sends exceed it."""
    rng = np.random.default_rng(seed)
    L, period, most, W, TF = 9, 5, 3, 8, 20
    Q, X = 50, 80
    pool_tokens, pool_links = 4 * Q, 4 * X
    reserve = 2 + _words(1, Q, X)
    packed_words = layout.WINDOW_HEADER + L * (reserve + (room if room is not None else 100) * _words(1, Q, X))
    params = np.zeros((L, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_CHANNEL] = rng.permutation(3 * L)[:L]
    window_frames = np.zeros(L, np.int64)
    window_sizes = np.zeros((L, W, 2), np.int64)
    window_starts = np.zeros(L, bool)
    kept_frames = np.zeros(L, np.int64)
    kept_sizes = np.zeros((L, 2), np.int64)
    row = rng.integers(-1, 4, L)
    lanes = [_Lane() for _ in range(L)]
    kinds = np.zeros(4, np.int64)
    held = early_sends = 0
    for _ in range(80):
        ran = rng.random(L) < 0.9
        good = ran & (rng.random(L) < 0.95)
        ended = ran & ((rng.random(L) < 0.06) | ~good)
        finishing = rng.random(L) < 0.5
        sizes = np.stack([rng.integers(0, Q // 2 + 1, L), rng.integers(0, X // 2 + 1, L)], axis=1)
        want = _model_step(lanes, good, ended, finishing, row, sizes, params[:, layout.P_CHANNEL], period, most, Q,
                           X, pool_tokens, pool_links, W, TF, packed_words)
        channels, starts, keepers, words, flushing, held_back, early = plan_windows(
            params, good, ended, finishing, row, sizes, window_frames, window_sizes, window_starts, kept_frames,
            kept_sizes, period, most, Q, X, pool_tokens, pool_links, TF, packed_words)
        got_slots = params[:, [layout.P_WIN_FRAME, layout.P_WIN_TOK, layout.P_WIN_LINK, layout.P_FLUSH,
                               layout.P_LAG, layout.P_KEPT]]
        assert got_slots.tolist() == want[0]
        assert channels.tolist() == want[1] and starts.tolist() == want[2] and keepers.tolist() == want[3]
        assert words == want[4] and words <= packed_words
        assert early == len(want[5])
        early_sends += early
        flushed = params[:, layout.P_FLUSH][good]
        assert flushing == int((flushed != layout.FLUSH_NONE).sum()) and held_back == sum(s[4] for s in want[0])
        kinds += np.bincount(flushed, minlength=4)
        held += held_back
        assert (kept_sizes[keepers] == -1).all()
        for lane in keepers:  # the device's report: what its pruning left of the kept frames
            w = lanes[lane]
            w.kept_sizes = (int(rng.integers(0, 3 * Q // 4)), int(rng.integers(0, 3 * X // 4)))
            kept_sizes[lane] = w.kept_sizes
        row[ran] += 1
        row[ended] = -1
        for array in (window_frames, window_sizes, kept_frames, kept_sizes):  # as the backend does for ended jobs
            array[ended] = 0
        for lane in range(L):
            w = lanes[lane]
            assert window_frames[lane] == len(w.frames) and kept_frames[lane] == w.kept
            assert window_starts[lane] == w.starts or not (w.frames or w.kept)  # (read when the pool next opens)
            assert window_sizes[lane, :len(w.frames)].tolist() == [list(f) for f in w.frames]
            assert not window_sizes[lane, len(w.frames):].any()
    if room is None:
        assert kinds[1:].min() > 10 and held > 5  # every kind of flush was exercised, and frames held back
        assert early_sends == 0
    else:
        assert early_sends > 10
    if room == 0:  # nothing may stay on the device past its step
        assert kinds[layout.FLUSH_KEEP] == 0 and held == 0


def test_a_packed_buffer_without_a_worst_case_frame_per_lane_is_an_error():
    L, Q, X = 2, 5, 7
    params = np.zeros((L, layout.LANE_PARAMS), np.int64)
    args = (params, np.ones(L, bool), np.zeros(L, bool), np.zeros(L, bool), np.zeros(L, np.int64),
            np.ones((L, 2), np.int64), np.zeros(L, np.int64), np.zeros((L, 4, 2), np.int64), np.zeros(L, bool),
            np.zeros(L, np.int64), np.zeros((L, 2), np.int64), 2, 1, Q, X, 4 * Q, 4 * X, 8)
    enough = layout.WINDOW_HEADER + L * (2 + _words(1, Q, X))
    plan_windows(*args, enough)
    with pytest.raises(ValueError, match="worst-case frame per lane"):
        plan_windows(*args, enough - 1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("TF", [8, 20])
def test_after_every_plan_the_worst_next_step_fits_the_packed_buffer(seed, TF):
    """What a plan promises the next step whatever its frames, checked by
    planning that step on a copy in the worst case: every lane searches a frame
    of Q tokens and X links that ends its job, so it sends all it holds, and
    the kept frames come back from the device as stored (nothing pruned). The
    packed buffer has room for a worst-case frame per lane and at most two
    more, so lanes hold frames back and send early at many steps. A frame
    table of ``TF`` = W frames holds no kept frames beside a window: every
    flush sends, most holding frames back."""
    rng = np.random.default_rng(seed)
    L, period, most, W, Q, X = 3, 4, 3, 8, 10, 12
    pool_tokens, pool_links = 4 * Q, 4 * X
    frame = _words(1, Q, X)
    packed_words = layout.WINDOW_HEADER + L * (2 + frame) + int(rng.integers(0, 2 * frame))
    params = np.zeros((L, layout.LANE_PARAMS), np.int64)
    params[:, layout.P_CHANNEL] = np.arange(L)
    window = [np.zeros(L, np.int64), np.zeros((L, W, 2), np.int64), np.zeros(L, bool), np.zeros(L, np.int64),
              np.zeros((L, 2), np.int64)]  # frames, their sizes, starts, kept frames, kept sizes
    row = np.full(L, -1, np.int64)
    held_back = early_sends = sent_with_lag = 0
    for _ in range(150):
        good = rng.random(L) < 0.95
        ended = (rng.random(L) < 0.05) | ~good
        sizes = np.stack([rng.integers(0, Q // 3 + 1, L), rng.integers(0, X // 3 + 1, L)], axis=1)
        stored = window[4] + window[1].sum(axis=1) + sizes  # what each lane's pool holds once this frame is in
        plan = plan_windows(params, good, ended, np.zeros(L, bool), row, sizes, *window, period, most, Q, X,
                            pool_tokens, pool_links, TF, packed_words)
        assert plan[3] <= packed_words
        keepers = plan[2]
        window[4][keepers] = stored[keepers] - window[1][keepers].sum(axis=1)  # the kept frames, none pruned
        sent_with_lag += int(((params[:, layout.P_FLUSH] == layout.FLUSH_SEND) & (params[:, layout.P_LAG] > 0)).sum())
        held_back += plan[5]
        early_sends += plan[6]
        worst = [a.copy() for a in (params, *window)]
        for a in worst[1:]:
            a[ended] = 0  # (the lanes whose job ended take a new one)
        worst_words = plan_windows(worst[0], np.ones(L, bool), np.ones(L, bool), np.zeros(L, bool), row + 1,
                                   np.tile([Q, X], (L, 1)), *worst[1:], period, most, Q, X, pool_tokens,
                                   pool_links, TF, packed_words)[3]
        assert worst_words <= packed_words
        row += 1
        row[ended] = -1
        for a in (window[0], window[1], window[3], window[4]):
            a[ended] = 0
    assert held_back > 30 and early_sends > 30 and (sent_with_lag > 30 or TF > W)
