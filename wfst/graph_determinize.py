"""min(det(L o G)): the composition, determinization and minimization of Kaldi's
recipe (``fsttablecompose L_disambig.fst G.fst | fstdeterminizestar
--use-log=true | fstminimizeencoded``), done by one of two libraries.

Routes:

``"kaldifst"``
    kaldifst (Kaldi's fstext with OpenFst, from PyPI): OpenFst ``Compose``,
    Kaldi's ``DeterminizeStar`` in the log semiring, ``MinimizeEncoded``.
    Needs no pynini; the default.
``"pynini"``
    pynini (OpenFst): ``Compose``, ``Determinize`` (functional) in the log
    semiring, then the steps of Kaldi's ``MinimizeEncoded``: weights quantized
    to multiples of ``delta``, labels and weights encoded, acceptor
    minimization, decoding.
``"auto"``
    ``"kaldifst"`` when it is installed, else ``"pynini"``.

Both determinize in the log semiring, as Kaldi's recipe does: where several
paths share an input prefix, the prefix's arcs carry the log-sum of their
costs, not the minimum, which keeps LG stochastic. The input has no epsilon
input labels (L has none, and G has none once its redundant states are gone).

How the routes compare. Both give the same weighted relation (the same best
output and cost, within the quantization of the weights, for every input).
They differ in one detail of determinization: Kaldi's DeterminizeStar takes
two subsets as equal when their residual weights are within ``delta``,
OpenFst quantizes the residuals to multiples of ``delta`` and compares
exactly, so weights that straddle a multiple of ``delta`` make an extra
state. Small graphs are isomorphic (``tests/test_graph.py`` checks it); on
the full 72k-word pocketsphinx LM pynini's LG has 0.5% more states (3,455,412
against 3,439,313). The kaldifst route gives Kaldi's own LG: isomorphic to
the output of Kaldi's binaries (``fsttablecompose | fstdeterminizestar
--use-log=true | fstminimizeencoded``) on that LM.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile

from .csr import CsrFst
from .graph_grammar import GraphBuildError
from .reader import read_fst

ROUTES = ("auto", "kaldifst", "pynini")
DELTA = 1.0 / 1024
"""Weight comparison and quantization step of determinization and
minimization (OpenFst's and Kaldi's ``kDelta``)."""


def resolve_route(route: str) -> str:
    """The library a route name stands for; :class:`GraphBuildError` for an
    unknown name or a library that is not installed."""
    if route not in ROUTES:
        raise GraphBuildError(f"route must be one of {', '.join(ROUTES)}, got {route!r}")
    if route == "auto":
        for name in ROUTES[1:]:
            if importlib.util.find_spec(name) is not None:
                return name
        raise GraphBuildError("building LG needs kaldifst or pynini: pip install kaldifst")
    if importlib.util.find_spec(route) is None:
        raise GraphBuildError(f"route {route!r} needs the {route} package: pip install {route}")
    return route


def determinized_composition(l_fst: CsrFst, g_fst: CsrFst, route: str = "auto") -> CsrFst:
    """min(det(L o G)) as a :class:`CsrFst` (see the module docstring). ``L``'s
    output labels and ``G``'s input labels must share one symbol table."""
    route = resolve_route(route)
    if route == "kaldifst":
        return _kaldifst(l_fst, g_fst)
    return _pynini(l_fst, g_fst)


def _kaldifst(l_fst: CsrFst, g_fst: CsrFst) -> CsrFst:
    import kaldifst

    with tempfile.TemporaryDirectory(prefix="wfst-graph-") as tmp:
        paths = {name: os.path.join(tmp, f"{name}.fst") for name in ("L", "G", "LG")}
        l_fst.write(paths["L"], "vector")
        g_fst.write(paths["G"], "vector")
        lexicon = kaldifst.StdVectorFst.read(paths["L"])
        kaldifst.arcsort(lexicon, sort_type="olabel")
        grammar = kaldifst.StdVectorFst.read(paths["G"])
        kaldifst.arcsort(grammar, sort_type="ilabel")
        lg = kaldifst.StdVectorFst(kaldifst.compose(lexicon, grammar))
        del lexicon, grammar
        if kaldifst.determinize_star(lg, delta=DELTA, use_log=True):  # pragma: no cover - no max_states given
            raise GraphBuildError("determinization of L o G stopped early")
        kaldifst.minimize_encoded(lg, delta=DELTA)
        lg.write(paths["LG"])
        del lg
        return read_fst(paths["LG"])  # a vector file: the arrays are copies, not a memory map


def _pynini(l_fst: CsrFst, g_fst: CsrFst) -> CsrFst:
    import pynini

    lexicon = l_fst.to_pynini().arcsort("olabel")
    grammar = g_fst.to_pynini().arcsort("ilabel")
    lg = pynini.compose(lexicon, grammar)
    del lexicon, grammar
    lg = pynini.determinize(pynini.arcmap(lg, map_type="to_log"), delta=DELTA)
    lg = pynini.arcmap(pynini.arcmap(lg, map_type="to_std"), map_type="quantize", delta=DELTA)
    encoder = pynini.EncodeMapper(lg.arc_type(), encode_labels=True, encode_weights=True)
    lg.encode(encoder).minimize(delta=DELTA).decode(encoder)
    return CsrFst.from_pynini(lg)

