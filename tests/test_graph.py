"""Graph building: G scores sentences as the ARPA model does, L follows Kaldi's
disambiguation rules, the routes give isomorphic graphs, T o LG matches
OpenFst's composition, and the CTC graph accepts exactly the CTC token strings
of its sentences.

The route-equality rule, on a tiny LM: every route's LG and TLG are
isomorphic to each other (``pynini.isomorphic``: a bijection of states that
maps the start, final costs and every arc's labels and cost, within 1/1024),
with equal state, arc and epsilon counts and equal symbol tables. (On large
LMs the routes give the same relation but not always isomorphic graphs: see
``wfst/graph_determinize.py``.)
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from wfst import SymbolTable, read_fst
from wfst.arpa import NgramModel, NgramOrder, write_arpa
from wfst.graph import Graph, GraphBuildError, build_ctc_tlg, build_g, build_lg, word_table
from wfst.graph_ctc import ctc_compose
from wfst.graph_lexicon import disambiguate
from wfst.lexicon import Lexicon

from tests.random_lm import random_model

try:
    import pynini
except ImportError:  # the GPU machine has none: the builder must work without it
    pynini = None

needs_pynini = pytest.mark.skipif(pynini is None, reason="needs pynini (the OpenFst reference)")

LN10 = math.log(10.0)
PHONES = ("a", "b", "c", "d", "e")


def random_lexicon(model: NgramModel, seed: int = 0, missing: tuple[str, ...] = ("w005",)) -> Lexicon:
    """Pronunciations for the LM's words but ``missing`` and ``<unk>``, with
    homophones (w001, w002), a prefix (w003 starts with their pronunciation),
    a repeated phone (w004), alternatives and pronunciation probabilities."""
    rng = np.random.default_rng(seed)
    prons, probs = {}, {}
    for word in model.vocab:
        if word in missing or word.startswith("<"):
            continue
        count = int(rng.integers(1, 3))
        prons[word] = [tuple(rng.choice(PHONES, int(rng.integers(1, 4)))) for _ in range(count)]
        probs[word] = [1.0] + [float(rng.uniform(0.2, 1.0)) for _ in range(count - 1)]
    fixed = {"w001": ("a", "b"), "w002": ("a", "b"), "w003": ("a", "b", "c"), "w004": ("d", "d")}
    for word, pron in fixed.items():
        prons[word], probs[word] = [pron], [1.0]
    return Lexicon(prons, probs)


@pytest.fixture(scope="module")
def model():
    return random_model(seed=0, num_words=24, num_sentences=60)


@pytest.fixture(scope="module")
def lexicon(model):
    return random_lexicon(model)


def routes_available():
    return [route for route in ("kaldifst", "pynini") if importlib.util.find_spec(route) is not None]


@pytest.fixture(scope="module")
def tlg(lexicon, model):
    with pytest.warns(UserWarning, match="2 of 25 LM words") as caught:
        built = build_ctc_tlg(lexicon, model)
    assert caught[0].filename == __file__  # the caller's line, not the library's
    return built


# ------------------------------------------------------------------------ G
def walk_cost(fst, words: SymbolTable, sentence: list[str]) -> float:
    """Cost of ``sentence`` through G, taking a back-off arc only where the
    state has no arc for the next word (or, at the end, is not final): the
    ARPA model's own back-off rule."""
    backoff = words["#0"]
    arcs = {}
    for s, i, o, w, d in fst.arc_table():
        arcs[(int(s), int(i))] = (float(w), int(d))
    state, cost = fst.start, 0.0
    for label in [words[w] for w in sentence] + [None]:
        while (label is None and fst.final[state] == np.inf) or (label is not None and (state, label) not in arcs):
            weight, state = arcs[(state, backoff)]
            cost += weight
        if label is None:
            return cost + float(fst.final[state])
        weight, state = arcs[(state, label)]
        cost += weight


def sentence_cost(model: NgramModel, sentence: list[str]) -> float:
    """``-ln P(sentence </s> | <s>)`` from the model's back-off probabilities."""
    words = ["<s>", *sentence, "</s>"]
    return -LN10 * sum(model.logprob(words[max(0, k - model.order + 1):k + 1]) for k in range(1, len(words)))


def test_g_scores_sentences_as_the_arpa_model(model):
    graph = build_g(model)
    assert graph.kind == "G" and graph.tokens is graph.words
    rng = np.random.default_rng(1)
    vocab = [w for w in model.vocab if w not in ("<s>", "</s>")]
    for length in rng.integers(0, 8, 50):
        sentence = list(rng.choice(vocab, length))
        assert walk_cost(graph.fst, graph.words, sentence) == pytest.approx(sentence_cost(model, sentence), abs=1e-4)


def test_g_leaves_out_ngrams_and_back_offs_of_probability_zero(tmp_path):
    """-inf in an ARPA file (probability 0): an infinite arc in G made
    determinization run forever; G leaves such arcs out."""
    path = tmp_path / "lm.arpa"
    path.write_text("\\data\\\nngram 1=5\nngram 2=4\n\n\\1-grams:\n-0.8 <s> -0.3\n-0.8 </s>\n-0.7 the -inf\n"
                    "-0.7 cat -0.2\n-0.7 dog -0.2\n\n\\2-grams:\n-0.3 <s> the\n-0.4 the cat\n-inf the dog\n"
                    "-0.2 cat </s>\n\n\\end\\\n")
    graph = build_g(path)
    fst, words = graph.fst, graph.words
    assert np.isfinite(fst.weight).all()
    assert walk_cost(fst, words, ["the", "cat"]) == pytest.approx(LN10 * (0.3 + 0.4 + 0.2), abs=1e-5)
    after_the = fst.nextstate[(fst.arc_sources() == fst.start) & (fst.ilabel == words["the"])][0]
    labels_after_the = fst.ilabel[fst.arc_sources() == after_the]
    assert words["cat"] in labels_after_the and words["dog"] not in labels_after_the
    assert words["#0"] not in labels_after_the  # its back-off weight is -inf too


def test_g_structure(model):
    graph = build_g(model)
    fst, words = graph.fst, graph.words
    backoff = fst.ilabel == words["#0"]
    assert np.all(fst.olabel[backoff] == 0)
    assert np.array_equal(fst.ilabel[~backoff], fst.olabel[~backoff])
    assert list(words)[-3:] == [(len(words) - 3, "#0"), (len(words) - 2, "<s>"), (len(words) - 1, "</s>")]
    assert not np.isin(fst.ilabel, [words["<s>"], words["</s>"]]).any()
    # one state per history that has a continuation: redundant ones are gone
    sources = fst.arc_sources()
    assert np.all(np.bincount(sources[~backoff], minlength=fst.num_states)[fst.final == np.inf] > 0)


def test_g_skips_ngrams_of_unknown_words(model):
    """Without w3, sentences without w3 keep their exact costs, although the
    states whose only continuations held w3 are gone."""
    restricted = build_g(model, words=[w for w in model.vocab if w != "w003"])
    assert "w003" not in restricted.words
    assert restricted.fst.num_states < build_g(model).fst.num_states
    rng = np.random.default_rng(2)
    vocab = [w for w in model.vocab if w not in ("<s>", "</s>", "w003")]
    for length in rng.integers(1, 6, 30):
        sentence = list(rng.choice(vocab, length))
        assert walk_cost(restricted.fst, restricted.words, sentence) == \
            pytest.approx(sentence_cost(model, sentence), abs=1e-4)


def test_unigram_model():
    unigrams = random_model(seed=1).orders[0]
    model = NgramModel(random_model(seed=1).vocab, (NgramOrder(unigrams.words, unigrams.logprob, 0 * unigrams.backoff),))
    graph = build_g(model)
    assert graph.fst.num_states == 1 and graph.fst.start == 0
    sentence = ["w000", "w003"]
    assert walk_cost(graph.fst, graph.words, sentence) == pytest.approx(sentence_cost(model, sentence), abs=1e-4)


def kaldi_binary(name):
    directory = os.environ.get("KALDI_GRAPH_BIN")
    return shutil.which(name, path=directory) if directory else shutil.which(name)


@needs_pynini
@pytest.mark.skipif(kaldi_binary("arpa2fst") is None,
                    reason="Kaldi's arpa2fst not found (PATH or $KALDI_GRAPH_BIN)")
@pytest.mark.parametrize("order", [2, 3, 4])
def test_g_is_kaldi_arpa2fst(tmp_path, order):
    model = random_model(seed=order, num_words=16, order=order)
    graph = build_g(model, words=[w for w in model.vocab if w != "w007"])
    write_arpa(model, tmp_path / "lm.arpa")
    graph.words.write(tmp_path / "words.txt")
    subprocess.run([kaldi_binary("arpa2fst"), "--disambig-symbol=#0", f"--read-symbol-table={tmp_path / 'words.txt'}",
                    str(tmp_path / "lm.arpa"), str(tmp_path / "G.fst")], check=True, capture_output=True)
    kaldi = read_fst(tmp_path / "G.fst")
    assert (kaldi.num_states, kaldi.num_arcs) == (graph.fst.num_states, graph.fst.num_arcs)
    assert pynini.isomorphic(graph.fst.to_pynini(), kaldi.to_pynini())


def test_a_start_state_without_bigrams_keeps_its_back_off_as_epsilon():
    """No "<s> w" bigram: the start state (history <s>) has nothing but its
    back-off arc, which arpa2fst's RemoveRedundantStates keeps, relabelled
    to epsilon; a sentence still pays bo(<s>) at its start."""
    vocab = ("</s>", "<s>", "a", "b")
    unigrams = NgramOrder([[0], [1], [2], [3]], [-0.5, -99.0, -0.4, -0.6], [0.0, -0.2, -0.1, 0.0])
    model = NgramModel(vocab, (unigrams, NgramOrder([[2, 3]], [-0.3], [0.0])))
    graph = build_g(model)
    fst, words = graph.fst, graph.words
    out = np.flatnonzero(fst.arc_sources() == fst.start)
    assert len(out) == 1 and (fst.ilabel[out[0]], fst.olabel[out[0]]) == (0, 0)
    assert fst.weight[out[0]] == pytest.approx(0.2 * LN10, abs=1e-5)
    unigram_state = int(fst.nextstate[out[0]])
    assert fst.final[unigram_state] == pytest.approx(0.5 * LN10, abs=1e-5)  # P(</s>)
    # "a b": bo(<s>) + P(a) + P(b | a) + P(</s>), the model's own sentence cost
    arcs = {(int(s), int(i)): (float(w), int(d)) for s, i, o, w, d in fst.arc_table()}
    cost, state = float(fst.weight[out[0]]), unigram_state
    for word in ("a", "b"):
        weight, state = arcs[(state, words[word])]
        cost += weight
    while fst.final[state] == np.inf:  # b's history has no arc of its own: back off
        weight, state = arcs[(state, words["#0"])]
        cost += weight
    cost += float(fst.final[state])
    assert cost == pytest.approx(sentence_cost(model, ["a", "b"]), abs=1e-5)
    assert cost == pytest.approx((0.2 + 0.4 + 0.3 + 0.5) * LN10, abs=1e-5)


def test_g_needs_an_end_of_sentence_it_can_reach():
    """</s> of probability 0 (-inf in the ARPA file) everywhere: G would have
    no final state."""
    model = NgramModel(("</s>", "<s>", "a"), (NgramOrder([[0], [1], [2]], [-np.inf, -99.0, -0.3], [0.0] * 3),))
    with pytest.raises(GraphBuildError, match="no n-gram ending in </s>"):
        build_g(model)


def test_g_needs_sentence_boundaries():
    no_end = NgramModel(("<s>", "a"), (NgramOrder([[0], [1]], [-99.0, -0.5], [0.0, 0.0]),))
    with pytest.raises(GraphBuildError, match="</s>"):
        build_g(no_end)
    clash = NgramModel(("<s>", "</s>", "#0"), (NgramOrder([[0], [1], [2]], [-99.0, -0.5, -0.5], [0.0] * 3),))
    with pytest.raises(GraphBuildError, match="reserved"):
        build_g(clash)


# ------------------------------------------------------------------------ L
def test_disambiguation_follows_add_lex_disambig():
    lexicon = Lexicon({
        "a": [("AH",), ("EY",)], "an": [("AH", "N")], "the": [("DH", "AH")],
        "thee": [("DH", "AH")], "uh": [("AH",)], "ant": [("AH", "N", "T")], "x": [("EH", "K", "S")],
    })
    entries, largest = disambiguate(lexicon)
    # AH: a prefix and shared by a/uh; AH N: a prefix of ant; DH AH: shared
    assert [(w, k) for w, _, _, k in entries] == [
        ("a", 1), ("a", 0), ("an", 1), ("the", 1), ("thee", 2), ("uh", 2), ("ant", 0), ("x", 0)]
    assert largest == 2


def test_l_carries_each_pronunciation_cost_on_its_first_arc():
    """lexiconp.txt probabilities: -ln p on the arc that outputs the word, 0 on
    the others (make_lexicon_fst.pl)."""
    from wfst.graph_lexicon import lexicon_fst

    lexicon = Lexicon({"a": [("x", "y"), ("y",)]}, {"a": [1.0, 0.25]})
    entries, _ = disambiguate(lexicon)
    fst = lexicon_fst(entries, {"x": 1, "y": 2, "#0": 3}, {"a": 1, "#0": 2})
    word_arcs = fst.olabel == 1
    assert sorted(fst.weight[word_arcs].tolist()) == pytest.approx([0.0, -math.log(0.25)])
    assert np.all(fst.weight[~word_arcs] == 0)


def shortest(fst, labels):
    """``(cost, output labels)`` of the cheapest path of ``fst`` (pynini) reading
    ``labels``; ``(inf, None)`` when it does not accept them."""
    accepted = pynini.compose(linear(labels), fst)
    if accepted.start() < 0 or accepted.num_states() == 0:
        return math.inf, None
    best = pynini.shortestpath(accepted).topsort()
    outputs, cost, state = [], 0.0, best.start()
    while best.num_arcs(state):
        arc = next(iter(best.arcs(state)))
        outputs.append(arc.olabel)
        cost += float(arc.weight)
        state = arc.nextstate
    return cost + float(best.final(state)), [o for o in outputs if o]


def linear(labels):
    fst = pynini.Fst()
    state = fst.add_state()
    fst.set_start(state)
    for label in labels:
        following = fst.add_state()
        fst.add_arc(state, pynini.Arc(label, label, 0.0, following))
        state = following
    fst.set_final(state)
    return fst


def sampled_inputs(fst, count, seed):
    """Input label strings of ``count`` random successful paths of ``fst``."""
    paths = pynini.randgen(fst, npath=count, seed=seed, max_length=40)
    return [list(labels) for labels in {tuple(l for l in p if l) for p in _input_strings(paths)}]


def _input_strings(paths):
    for start_arc in paths.arcs(paths.start()):
        labels, state, arc = [], start_arc.nextstate, start_arc
        labels.append(arc.ilabel)
        while paths.num_arcs(state):
            arc = next(iter(paths.arcs(state)))
            labels.append(arc.ilabel)
            state = arc.nextstate
        yield labels


def l_and_g(graph: Graph, lexicon: Lexicon, model: NgramModel):
    """The L and G that ``graph`` (an LG) was built from, as pynini FSTs."""
    from wfst.graph_lexicon import lexicon_fst

    used = lexicon.restrict(model.vocab)
    entries, _ = disambiguate(used)
    l_fst = lexicon_fst(entries, graph.tokens.symbol_to_id, graph.words.symbol_to_id).to_pynini()
    g = build_g(model, words=used)
    assert list(g.words) == list(graph.words)
    return l_fst.arcsort("olabel"), g.fst.to_pynini().arcsort("ilabel")


@needs_pynini
def test_lg_is_l_compose_g(lexicon, model):
    """min(det(L o G)) keeps L o G's relation: on inputs sampled from L o G, the
    same best output and cost (det is in the log semiring and weights are
    quantized to 1/1024 by minimization: costs agree to 1e-2)."""
    with pytest.warns(UserWarning):
        graph = build_lg(lexicon, model)
    phones = graph.tokens
    assert phones["<eps>"] == 0 and [phones[p] for p in PHONES] == [1, 2, 3, 4, 5]
    _, largest = disambiguate(lexicon.restrict(model.vocab))
    assert largest >= 2  # w1 and w2 share a pronunciation
    assert [phones[f"#{k}"] for k in range(largest + 1)] == list(range(6, 7 + largest))
    assert phones.max_id == 6 + largest
    l_fst, g_fst = l_and_g(graph, lexicon, model)
    reference = pynini.compose(l_fst, g_fst)
    lg = graph.fst.to_pynini()
    for labels in sampled_inputs(reference, 60, seed=3):
        cost, words = shortest(lg, labels)
        expected_cost, expected_words = shortest(reference, labels)
        assert words == expected_words
        assert cost == pytest.approx(expected_cost, abs=1e-2)


# ------------------------------------------------------------------- routes
@pytest.mark.skipif(len(routes_available()) < 2, reason="needs both kaldifst and pynini")
@pytest.mark.parametrize("build", [build_lg, build_ctc_tlg])
def test_routes_give_isomorphic_graphs(lexicon, model, build):
    with pytest.warns(UserWarning):
        graphs = [build(lexicon, model, route=route) for route in routes_available()]
    first = graphs[0]
    for other in graphs[1:]:
        assert (other.fst.num_states, other.fst.num_arcs, other.fst.num_epsilon_arcs) == \
            (first.fst.num_states, first.fst.num_arcs, first.fst.num_epsilon_arcs)
        assert list(other.tokens) == list(first.tokens) and list(other.words) == list(first.words)
        assert pynini.isomorphic(first.fst.to_pynini(), other.fst.to_pynini(), delta=1.0 / 1024)


def test_route_choice(lexicon, model, monkeypatch):
    with pytest.raises(GraphBuildError, match="route must be one of"):
        build_lg(lexicon, model, route="openfst")
    import wfst.graph_determinize as routes

    installed = {"kaldifst", "pynini"}  # what find_spec will claim
    monkeypatch.setattr(routes.importlib.util, "find_spec", lambda name: name in installed or None)
    assert routes.resolve_route("auto") == "kaldifst"
    installed.discard("kaldifst")
    assert routes.resolve_route("auto") == "pynini"
    with pytest.raises(GraphBuildError, match="pip install kaldifst"):
        routes.resolve_route("kaldifst")
    installed.clear()
    with pytest.raises(GraphBuildError, match="needs kaldifst or pynini"):
        routes.resolve_route("auto")


# ---------------------------------------------------------------------- TLG
def ctc_topology(max_token: int, disambig: list[int]):
    """T as the module docstring of wfst.graph_ctc describes it, built arc by
    arc with pynini: the reference for ctc_compose."""
    t = pynini.Fst()
    states = {token: t.add_state() for token in range(1, max_token + 1)}  # 1: the blank state
    t.set_start(states[1])
    for token, state in states.items():
        t.set_final(state)
        t.add_arc(state, pynini.Arc(1, 0, 0.0, states[1]))
        for q in range(2, max_token + 1):
            t.add_arc(state, pynini.Arc(q, 0 if q == token else q, 0.0, states[q]))
        for k in disambig:
            t.add_arc(state, pynini.Arc(k, k, 0.0, state))
    return t.arcsort("olabel")


@needs_pynini
def test_ctc_compose_is_openfst_compose(lexicon, model):
    """T o LG by wfst.graph_ctc equals OpenFst's composition with T built arc by
    arc, disambiguation symbols then relabelled to epsilon: same state, arc and
    epsilon counts, and on token strings sampled from it the same best words
    and cost."""
    with pytest.warns(UserWarning):
        lg = build_lg(lexicon, model)
    # phones 1..5 -> tokens 2..6, #k -> 7.. (as build_ctc_tlg numbers them)
    shifted = lg.fst.to_pynini()
    shifted.relabel_pairs(ipairs=[(i, i + 1) for i in range(lg.tokens.max_id, 0, -1)])
    max_token = len(PHONES) + 1
    disambig = list(range(max_token + 1, lg.tokens.max_id + 2))
    from wfst import CsrFst

    ours = ctc_compose(CsrFst.from_pynini(shifted), max_token)
    reference = pynini.compose(ctc_topology(max_token, disambig), shifted.arcsort("ilabel"))
    reference.relabel_pairs(ipairs=[(k, 0) for k in disambig])
    reference = CsrFst.from_pynini(reference)
    assert (ours.num_states, ours.num_arcs, ours.num_epsilon_arcs) == \
        (reference.num_states, reference.num_arcs, reference.num_epsilon_arcs)
    ours_p, reference_p = ours.to_pynini(), reference.to_pynini()
    for labels in sampled_inputs(reference_p, 60, seed=4):
        cost, words = shortest(ours_p, labels)
        expected_cost, expected_words = shortest(reference_p, labels)
        assert words == expected_words and cost == pytest.approx(expected_cost, abs=1e-4)


def ctc_tokens(tokens: SymbolTable, phones: list[str]) -> list[int]:
    """A CTC token string for ``phones``: blanks around, a blank between
    repeated phones, some phones held for two frames."""
    out = [1]
    for k, phone in enumerate(phones):
        if k and phones[k - 1] == phone:
            out.append(1)
        out += [tokens[phone]] * (1 + k % 2)
    return out + [1]


def test_tlg_labels_and_tables(tlg):
    fst = tlg.fst
    assert tlg.kind == "TLG" and tlg.dropped_words == ("<unk>", "w005")
    assert list(tlg.tokens) == [(0, "<eps>"), (1, "<blk>")] + [(i, p) for i, p in enumerate(PHONES, 2)]
    assert set(np.unique(fst.ilabel)) <= set(range(0, len(PHONES) + 2))  # no #k left
    assert "w005" not in tlg.words and "w001" in tlg.words
    assert fst.num_epsilon_arcs > 0  # back-off arcs, now input-epsilon


def cost_of(fst, inputs, outputs) -> float:
    """Cost of the cheapest path of ``fst`` (pynini) reading ``inputs`` and
    writing ``outputs`` (label lists); inf when there is none."""
    paths = pynini.compose(pynini.compose(linear(inputs), fst), linear(outputs))
    if paths.start() < 0:
        return math.inf
    return float(pynini.shortestdistance(paths, reverse=True)[paths.start()])


@needs_pynini
def test_tlg_decodes_ctc_token_strings(tlg, lexicon, model):
    """A sentence spelt as a CTC token string reads as that sentence at the cost
    G gives it (its cheapest path, back-off arcs free to take), within the
    quantization of the weights (1/1024 per arc)."""
    fst = tlg.fst.to_pynini()
    g = build_g(model, words=lexicon)
    g_words = g.fst.to_pynini().project("output")
    rng = np.random.default_rng(5)
    single = [w for w in lexicon if len(lexicon[w]) == 1]  # pronunciation cost 0
    for length in rng.integers(0, 5, 30):
        sentence = list(rng.choice(single, length))
        phones = [p for w in sentence for p in lexicon[w][0]]
        labels = [tlg.words[w] for w in sentence]
        expected = cost_of(g_words, labels, labels)
        assert cost_of(fst, ctc_tokens(tlg.tokens, phones), labels) == pytest.approx(expected, abs=1e-2)


@needs_pynini
def test_ctc_collapse_rules(tlg):
    """w004 is "d d": it needs a blank between its phones, "d d" without one is
    a single d. The homophones w001/w002 both read "a b"; w003 reads "a b c"."""
    fst, tokens, words = tlg.fst.to_pynini(), tlg.tokens, tlg.words
    d, a, b, c = (tokens[p] for p in "dabc")
    assert cost_of(fst, [d, 1, d], [words["w004"]]) < math.inf
    assert cost_of(fst, [d, d, 1, 1, d], [words["w004"]]) < math.inf
    assert cost_of(fst, [d, d, d], [words["w004"]]) == math.inf
    assert cost_of(fst, [a, b, c], [words["w003"]]) < math.inf
    assert cost_of(fst, [1, a, a, b, 1], [words["w001"]]) < math.inf
    assert cost_of(fst, [a, b], [words["w002"]]) < math.inf
    assert cost_of(fst, [a, b], [words["w003"]]) == math.inf


@needs_pynini
def test_backoff_at_the_sentence_start(lexicon, model, tlg):
    """A sentence whose first word has no "<s> w" bigram needs G's back-off arc
    from the start state: the blank (start) state of T has the #k loops."""
    start_words = {model.vocab[w] for _, w in model.orders[1].words if _ == model.word_id("<s>")}
    candidates = [w for w in lexicon if w in model.vocab and w not in start_words]
    assert candidates
    fst = tlg.fst.to_pynini()
    for word in candidates:
        tokens = ctc_tokens(tlg.tokens, list(lexicon[word][0]))
        for start in (0, 1):  # with and without a blank first
            assert cost_of(fst, tokens[start:], [tlg.words[word]]) < math.inf


@needs_pynini
def test_user_token_table(lexicon, model):
    """Tokens in the user's order, with one no lexicon word uses."""
    table = SymbolTable.from_pairs([("<eps>", 0), ("<blk>", 1), ("x", 2)]
                                   + [(p, i) for i, p in enumerate(reversed(PHONES), 3)])
    with pytest.warns(UserWarning):
        graph = build_ctc_tlg(lexicon, model, tokens=table)
    assert graph.tokens is table
    assert 2 not in set(np.unique(graph.fst.ilabel))
    _, out = shortest(graph.fst.to_pynini(), [table["d"], 1, table["d"]])
    assert out == [graph.words["w004"]]


@pytest.mark.parametrize("pairs, match", [
    ([("<eps>", 0), ("a", 1), ("<blk>", 2)], "must map <blk> to 1"),
    ([("<s>", 0), ("<blk>", 1)], "must map <eps> to 0"),
    ([("<eps>", 0), ("<blk>", 1), ("a", 2)], "lacks 4 phone"),
    ([("<eps>", 0), ("<blk>", 1), *((p, i) for i, p in enumerate(PHONES, 2)), ("#0", 7)], "'#'-prefixed"),
])
def test_bad_token_tables(lexicon, model, pairs, match):
    with pytest.raises(GraphBuildError, match=match), pytest.warns(UserWarning):
        build_ctc_tlg(lexicon, model, tokens=SymbolTable.from_pairs(pairs))


def test_ctc_compose_refuses_an_lg_it_cannot_read():
    from tests.decoder_graphs import graph

    with pytest.raises(GraphBuildError, match="CTC blank"):  # phones are 2 and up
        ctc_compose(graph(2, 0, {1: 0.0}, [(0, 1, 1, 5, 0.0)]), max_token=3)
    with pytest.raises(GraphBuildError, match="no start state"):
        ctc_compose(graph(2, -1, {1: 0.0}, [(0, 1, 2, 5, 0.0)]), max_token=3)


def test_no_shared_word(model):
    with pytest.raises(GraphBuildError, match="no LM word"), pytest.warns(UserWarning):
        build_ctc_tlg(Lexicon({"zzz": [("a",)]}), model)


# ------------------------------------------------------------------- output
def test_write_and_read_back(tlg, tmp_path):
    paths = tlg.write(tmp_path)
    assert {p.name for p in paths.values()} == {"TLG.fst", "tokens.txt", "words.txt"}
    assert read_fst(paths["fst"]).same_as(tlg.fst)
    assert list(SymbolTable.read(paths["tokens"])) == list(tlg.tokens)
    assert list(SymbolTable.read(paths["words"])) == list(tlg.words)
    tlg.write(tmp_path / "vector", fst_type="vector")
    assert read_fst(tmp_path / "vector" / "TLG.fst").same_as(tlg.fst)
    if pynini is not None:
        assert pynini.Fst.read(str(paths["fst"])).num_states() == tlg.fst.num_states
    if importlib.util.find_spec("kaldifst") is not None:
        import kaldifst

        assert kaldifst.StdConstFst.read(str(paths["fst"])).num_states == tlg.fst.num_states


def test_word_table():
    table = word_table(["b", "a", "c"])
    assert list(table) == [(0, "<eps>"), (1, "a"), (2, "b"), (3, "c"), (4, "#0"), (5, "<s>"), (6, "</s>")]


def test_paths_as_inputs(tmp_path, lexicon, model):
    write_arpa(model, tmp_path / "lm.arpa")
    lexicon.write(tmp_path / "lexicon.txt")
    with pytest.warns(UserWarning):
        from_files = build_ctc_tlg(tmp_path / "lexicon.txt", tmp_path / "lm.arpa")
        in_memory = build_ctc_tlg(lexicon, model)
    assert from_files.fst.same_as(in_memory.fst)


@pytest.mark.skipif(importlib.util.find_spec("kaldifst") is None, reason="needs kaldifst")
def test_builds_without_pynini(tmp_path, lexicon, model, tlg):
    """Where pynini cannot be imported (the GPU machine), route "auto" builds
    with kaldifst and gives the same graph."""
    write_arpa(model, tmp_path / "lm.arpa")
    lexicon.write(tmp_path / "lexicon.txt")
    script = (
        "import sys, warnings; sys.modules['pynini'] = None; warnings.simplefilter('ignore')\n"
        "from wfst.graph import build_ctc_tlg\n"
        f"build_ctc_tlg({str(tmp_path / 'lexicon.txt')!r}, {str(tmp_path / 'lm.arpa')!r}).write({str(tmp_path)!r})\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root, capture_output=True)
    assert read_fst(tmp_path / "TLG.fst").same_as(tlg.fst)
