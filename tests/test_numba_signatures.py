"""Each numba function of the library compiles once per argument type, not once
per pattern of literal constants its callers pass: numba types a constant that a
jitted function passes to another (``0``, ``True``) as a literal and compiles the
callee again for it (the first ``wfst-decode example`` compiled 11 functions two
to six times, 58 s against 40 s on the development VM). Constants go as
``wfst.cpu_search.ZERO``, ``np.int64(n)`` or ``np.bool_(b)``."""

import sys

import numba
import numpy as np
from numba.core import types

import wfst
from tests.random_graph import random_graph, random_scores
from wfst.decoding_graph import DecodingGraph


def _literal_signatures() -> dict[str, list]:
    """Per numba function of wfst and lattice: its signatures with a literal argument."""
    found = {}
    for name, module in list(sys.modules.items()):
        if not (name.startswith("wfst.") or name.startswith("lattice.")):
            continue
        for attr, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher) and value.py_func.__module__ == name:
                bad = [sig for sig in value.signatures if any(isinstance(t, types.Literal) for t in sig)]
                if bad:
                    found[f"{name}.{attr}"] = bad
    return found


def _signature_count() -> int:
    """Signatures compiled so far, over every numba function of wfst and lattice."""
    return sum(len(value.signatures) for name, module in list(sys.modules.items())
               if name.startswith(("wfst.", "lattice.")) for value in vars(module).values()
               if isinstance(value, numba.core.registry.CPUDispatcher))


def test_a_cached_graph_and_read_only_scores_compile_nothing_new(tmp_path):
    """A graph read from a wfst cache is memory-mapped read-only, and numba
    compiles every function again for read-only arrays (11 s on the first
    decode); every graph's arrays are read-only views, and so are the checked
    scores, so the array types never differ."""
    config = wfst.DecoderConfig(beam=8.0, max_active=8, min_active=1, lattice_beam=3.0)
    fst = random_graph(9, max_states=12)
    rows = [random_scores(400 + k, 6) for k in range(2)]
    wfst.Decoder(fst, config, device="cpu").decode(rows)
    compiled = _signature_count()
    fst.save(tmp_path / "g.wfst")
    cached = wfst.read_fst(tmp_path / "g.wfst")
    for row in rows:
        row.flags.writeable = False
    results = wfst.Decoder(cached, config, device="cpu").decode(rows)
    assert results[0].lattice is not None and _signature_count() == compiled


def test_no_numba_function_is_compiled_for_literal_arguments():
    from bench.lattice_host import measure, raw_frames

    fst = random_graph(8, max_states=12)
    graph = DecodingGraph(fst)
    config = wfst.DecoderConfig(beam=8.0, max_active=8, min_active=1, lattice_beam=3.0, prune_interval=3)
    rows = [random_scores(300 + k, 5 + 4 * k) for k in range(2)]
    decoder = wfst.Decoder(fst, config, device="cpu")
    results = decoder.decode(rows)  # the search, its lattice pruning and assembly, the best path
    for result in results:
        lattice = result.lattice
        lattice.best_path(), lattice.nbest(3), lattice.word_confidences(), lattice.prune(1.0)
        lattice.determinize()
    with decoder.stream() as stream:  # partial results
        for k in range(0, rows[1].shape[0], 3):
            stream.accept(rows[1][k:k + 3])
            stream.partial()
        stream.finish()
    # the CUDA backend's host lattices (appends in runs, interim pruning, finishing), without a GPU
    measure(graph, config, [raw_frames(graph, config, r) for r in rows], lanes=3, threads=1, rounds=2, window=2,
            lag=1)
    assert np.isfinite(results[0].cost)
    assert _literal_signatures() == {}
