"""Decoding graphs from a lexicon and an ARPA n-gram LM: G, LG and CTC TLG.

::

    graph = wfst.graph.build_ctc_tlg("lexicon.txt", "lm.arpa")
    graph.write("graph_dir")          # TLG.fst, tokens.txt, words.txt
    fst = graph.fst                   # a wfst.CsrFst, ready for the decoder

The recipe is Kaldi's: G from ``arpa2fst`` (:mod:`wfst.graph_grammar`), L with
disambiguation symbols (:mod:`wfst.graph_lexicon`), ``min(det(L o G))``
(:mod:`wfst.graph_determinize`, by kaldifst or pynini), and for CTC the token
topology composed on the left with the disambiguation symbols removed
(:mod:`wfst.graph_ctc`).

Symbol tables:

- words (output labels of every graph): ``<eps>``=0, the words in sorted
  (code point) order from 1, then ``#0``, ``<s>``, ``</s>``, as Kaldi's
  ``prepare_lang.sh`` numbers them. With a lexicon, the words are those of
  the LM that have a pronunciation; LM words without one are dropped with a
  warning (and listed in :attr:`Graph.dropped_words`), lexicon words outside
  the LM are left out.
- CTC tokens (input labels of TLG): ``<eps>``=0, ``<blk>``=1 and the lexicon's
  phones, sorted, from 2, unless a token table is given; score column
  ``ilabel - 1`` then holds the blank in column 0. TLG's input labels are 0
  and tokens; ``#k`` symbols are gone.
- LG's input labels: ``<eps>``=0, phones from 1, then ``#0``, ``#1``, ... as
  in Kaldi's ``phones.txt`` (LG keeps its disambiguation symbols, for a
  later composition with H or C).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .arpa import NgramModel, read_arpa
from .csr import CsrFst
from .graph_ctc import BLANK, ctc_compose
from .graph_determinize import ROUTES, determinized_composition, resolve_route
from .graph_grammar import BOS, EOS, GraphBuildError, grammar_fst
from .graph_lexicon import disambiguate, lexicon_fst
from .lexicon import Lexicon, read_lexicon
from .symbols import SymbolTable
from .user_warnings import warn_user

__all__ = ["ROUTES", "Graph", "GraphBuildError", "build_ctc_tlg", "build_g", "build_lg", "word_table"]

log = logging.getLogger(__name__)

EPS, BLK, BACKOFF = "<eps>", "<blk>", "#0"
_INPUT_TABLE_FILE = {"TLG": "tokens.txt", "LG": "phones.txt", "G": None}


@dataclass(frozen=True, eq=False)
class Graph:
    """A built graph: ``fst`` (validated :class:`CsrFst`), ``tokens`` (its
    input labels: CTC tokens for TLG, phones and ``#k`` for LG, words for G),
    ``words`` (its output labels), ``kind`` (``"TLG"``, ``"LG"`` or ``"G"``)
    and ``dropped_words``, the LM words left out for want of a pronunciation."""

    fst: CsrFst
    tokens: SymbolTable
    words: SymbolTable
    kind: str
    dropped_words: tuple[str, ...] = ()

    def write(self, out_dir: str | os.PathLike, fst_type: str = "const") -> dict[str, Path]:
        """Write ``{kind}.fst`` (OpenFst ``const`` or ``vector``, read by
        :func:`wfst.read_fst`, OpenFst, pynini, kaldifst and Kaldi),
        ``words.txt`` and the input table (``tokens.txt`` for TLG,
        ``phones.txt`` for LG) into ``out_dir`` (created if needed). Returns
        the paths by role: ``fst``, ``words`` and ``tokens`` (not for G)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"fst": out / f"{self.kind}.fst", "words": out / "words.txt"}
        self.fst.write(paths["fst"], fst_type)
        self.words.write(paths["words"])
        if _INPUT_TABLE_FILE[self.kind]:
            paths["tokens"] = out / _INPUT_TABLE_FILE[self.kind]
            self.tokens.write(paths["tokens"])
        return paths

    def __repr__(self) -> str:
        return (f"Graph({self.kind}: {self.fst.num_states} states, {self.fst.num_arcs} arcs, "
                f"{len(self.tokens)} input symbols, {len(self.words)} words)")


def word_table(words) -> SymbolTable:
    """Kaldi's ``words.txt`` for ``words`` (any order, no duplicates):
    ``<eps>``=0, the words sorted, ``#0``, ``<s>``, ``</s>``."""
    return SymbolTable.from_pairs((w, i) for i, w in enumerate([EPS, *sorted(words), BACKOFF, BOS, EOS]))


def build_g(arpa: str | os.PathLike | NgramModel, *, words=None) -> Graph:
    """G alone, from an ARPA file or an :class:`NgramModel` (Kaldi ``arpa2fst
    --disambig-symbol=#0`` semantics; see :mod:`wfst.graph_grammar`).

    ``words``: if given, only these LM words are kept (n-grams with another
    word are skipped, as ``arpa2fst --read-symbol-table`` skips them)."""
    model = _model(arpa)
    vocab = _lm_words(model)
    if words is not None:
        keep = set(words)
        vocab = [w for w in vocab if w in keep]
    table = word_table(vocab)
    fst, stats = grammar_fst(model, _label_of(model, table), table[BACKOFF])
    log.info("G: %s, %s", fst, stats)
    return Graph(fst, table, table, "G")


def build_lg(lexicon: str | os.PathLike | Lexicon, arpa: str | os.PathLike | NgramModel, *,
             route: str = "auto") -> Graph:
    """``min(det(L o G))`` with Kaldi's recipe; input labels are phones and
    ``#k`` (table ``<eps>``, phones sorted from 1, ``#0``, ``#1``, ...).

    ``route``: which library composes, determinizes and minimizes: ``"auto"``
    (kaldifst if installed, else pynini), ``"kaldifst"`` (Kaldi's own result)
    or ``"pynini"``; see :mod:`wfst.graph_determinize` for how they compare.
    These three steps take most of the time, on one core: about 65-80 s for
    the 72k-word pocketsphinx LM (7.8 M LG arcs; minimization about half)."""
    route = resolve_route(route)
    model = _model(arpa)
    used, dropped = _usable_lexicon(_lexicon(lexicon), model)
    phone_labels = {p: i for i, p in enumerate(used.phones, 1)}
    return _build(used, dropped, model, route, phone_labels, ctc=None)


def build_ctc_tlg(lexicon: str | os.PathLike | Lexicon, arpa: str | os.PathLike | NgramModel, *,
                  tokens: str | os.PathLike | SymbolTable | None = None, route: str = "auto") -> Graph:
    """The CTC decoding graph ``T o min(det(L o G))``, disambiguation symbols
    removed (see :mod:`wfst.graph_ctc` for T).

    ``tokens``: the acoustic model's token table (a :class:`SymbolTable` or a
    path), with ``<eps>``=0, ``<blk>``=1 and every phone of the lexicon; other
    tokens may be present (no path uses them). Default: ``<eps>``, ``<blk>``,
    the phones sorted. ``route``: as in :func:`build_lg`.

    Size and time: the 72k-word pocketsphinx trigram LM with CMUdict gives
    6.97 M states and 26.3 M arcs (2.4 M input-epsilon) in about 85 s, with a
    peak of about 2 GB, on the 2-core development machine; its 5,000-word
    pruned cut (680k n-grams), 1.17 M states and 4.6 M arcs in about 10 s.
    """
    route = resolve_route(route)
    model = _model(arpa)
    used, dropped = _usable_lexicon(_lexicon(lexicon), model)
    table = _token_table(tokens, used.phones)
    phone_labels = {symbol: i for i, symbol in table if i > BLANK}
    return _build(used, dropped, model, route, phone_labels, ctc=table)


# ------------------------------------------------------------------ internals
def _usable_lexicon(lexicon: Lexicon, model: NgramModel) -> tuple[Lexicon, tuple[str, ...]]:
    """The lexicon restricted to the LM's words, and the LM words it lacks
    (warned about); :class:`GraphBuildError` when the two share no word."""
    lm_words = _lm_words(model)
    dropped = tuple(sorted(w for w in lm_words if w not in lexicon))
    if dropped:
        warn_user(f"{len(dropped)} of {len(lm_words)} LM words have no pronunciation in the lexicon and are "
                  f"dropped, with the n-grams that hold them: {', '.join(dropped[:5])}"
                  f"{', ...' if len(dropped) > 5 else ''}")
    used = lexicon.restrict(lm_words)
    if not len(used):
        raise GraphBuildError("no LM word has a pronunciation in the lexicon: nothing to build")
    return used, dropped


def _build(used: Lexicon, dropped: tuple[str, ...], model: NgramModel, route: str,
           phone_labels: dict[str, int], ctc: SymbolTable | None) -> Graph:
    """L (input labels ``phone_labels`` and ``#k`` after them), G, min(det(L o G)),
    and T o LG when ``ctc`` (the token table) is given."""
    started = time.perf_counter()
    words = word_table(used)
    entries, max_disambig = disambiguate(used)
    first_disambig = max(phone_labels.values()) + 1
    input_labels = dict(phone_labels)
    input_labels.update({f"#{k}": first_disambig + k for k in range(max_disambig + 1)})
    l_fst = lexicon_fst(entries, input_labels, words.symbol_to_id)
    g_fst, stats = grammar_fst(model, _label_of(model, words), words[BACKOFF])
    log.info("L: %s; G: %s, %s (%.1f s)", l_fst, g_fst, stats, time.perf_counter() - started)
    lg = determinized_composition(l_fst, g_fst, route)
    del l_fst, g_fst
    log.info("LG (%s): %s (%.1f s)", route, lg, time.perf_counter() - started)
    if ctc is None:
        phones = SymbolTable.from_pairs([(EPS, 0), *input_labels.items()])
        return Graph(lg, phones, words, "LG", dropped)
    tlg = ctc_compose(lg, max(phone_labels.values()))
    log.info("TLG: %s (%.1f s)", tlg, time.perf_counter() - started)
    return Graph(tlg, ctc, words, "TLG", dropped)


def _model(arpa) -> NgramModel:
    return arpa if isinstance(arpa, NgramModel) else read_arpa(arpa)


def _lexicon(lexicon) -> Lexicon:
    return lexicon if isinstance(lexicon, Lexicon) else read_lexicon(lexicon)


def _lm_words(model: NgramModel) -> list[str]:
    """The LM's words but ``<s>`` and ``</s>``; :class:`GraphBuildError` for a
    word that clashes with the reserved symbols of the word table."""
    reserved = {EPS, BACKOFF}.intersection(model.vocab)
    if reserved:
        raise GraphBuildError(f"the LM has the word(s) {sorted(reserved)}, reserved in words.txt; rename them")
    return [w for w in model.vocab if w not in (BOS, EOS)]


def _label_of(model: NgramModel, words: SymbolTable) -> np.ndarray:
    """Output label of each LM word id, -1 for words not in ``words``."""
    ids = words.symbol_to_id
    return np.array([ids.get(w, -1) for w in model.vocab], dtype=np.int64)


def _token_table(tokens, phones: tuple[str, ...]) -> SymbolTable:
    if tokens is None:
        return SymbolTable.from_pairs((t, i) for i, t in enumerate([EPS, BLK, *phones]))
    table = tokens if isinstance(tokens, SymbolTable) else SymbolTable.read(tokens)
    where = f"token table {table.path!r}" if table.path else "the token table"
    if table.symbol_to_id.get(EPS) != 0:
        raise GraphBuildError(f"{where} must map {EPS} to 0")
    if table.symbol_to_id.get(BLK) != BLANK:
        raise GraphBuildError(f"{where} must map {BLK} to {BLANK}, so that score column 0 is the blank")
    missing = [p for p in phones if p not in table]
    if missing:
        raise GraphBuildError(f"{where} lacks {len(missing)} phone(s) of the lexicon: {', '.join(missing[:10])}")
    reserved = [symbol for _, symbol in table if symbol.startswith("#")]
    if reserved:
        raise GraphBuildError(f"{where} has '#'-prefixed symbols ({', '.join(reserved[:5])}); those are "
                              "disambiguation symbols, added and removed by the builder: drop them")
    return table
