"""Build the small CTC TLG shipped as wfst/data/example_tlg.fst (needs pynini).

    python bench/make_example_graph.py [OUT_DIR]     (default: wfst/data)

T is the CTC token topology (blank and phone repeats collapse), L a 12-word
lexicon over 10 phones, G a seeded unigram word loop. Tokens: <eps>=0,
<blk>=1, phones 2..11, so score column 0 is blank. The graph is tiny on
purpose (the README's first command and fast tests); the workload builder
(bench/workload) makes the real ones.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pynini
import pywrapfst

PHONES = ["AH", "B", "D", "IY", "K", "L", "N", "OW", "S", "T"]
LEXICON = {
    "bee": "B IY", "bow": "B OW", "dot": "D AH T", "key": "K IY", "coal": "K OW L", "knee": "N IY",
    "note": "N OW T", "see": "S IY", "sold": "S OW L D", "tea": "T IY", "toast": "T OW S T", "low": "L OW",
}
BLANK = 1


def token_id(phone: str) -> int:
    return PHONES.index(phone) + 2


def ctc_topology() -> pynini.Fst:
    """Tokens to phones: blank and repeats of the same token emit nothing."""
    fst = pynini.Fst()
    blank_state = fst.add_state()
    fst.set_start(blank_state)
    fst.set_final(blank_state)
    phone_states = {p: fst.add_state() for p in PHONES}
    fst.add_arc(blank_state, pynini.Arc(BLANK, 0, 0.0, blank_state))
    for p, state in phone_states.items():
        fst.set_final(state)
        fst.add_arc(blank_state, pynini.Arc(token_id(p), token_id(p), 0.0, state))
        fst.add_arc(state, pynini.Arc(token_id(p), 0, 0.0, state))
        fst.add_arc(state, pynini.Arc(BLANK, 0, 0.0, blank_state))
        for q, other in phone_states.items():
            if q != p:
                fst.add_arc(state, pynini.Arc(token_id(q), token_id(q), 0.0, other))
    return fst


def lexicon(words: list[str]) -> pynini.Fst:
    """Phones to words: a word's label sits on its first phone."""
    fst = pynini.Fst()
    root = fst.add_state()
    fst.set_start(root)
    fst.set_final(root)
    for word_id, word in enumerate(words, start=1):
        phones = LEXICON[word].split()
        state = root
        for k, phone in enumerate(phones):
            target = root if k == len(phones) - 1 else fst.add_state()
            fst.add_arc(state, pynini.Arc(token_id(phone), word_id if k == 0 else 0, 0.0, target))
            state = target
    return fst


def grammar(words: list[str], seed: int = 0) -> pynini.Fst:
    """A unigram word loop with seeded probabilities (costs are -ln p)."""
    probabilities = np.random.default_rng(seed).dirichlet(np.ones(len(words) + 1))
    fst = pynini.Fst()
    state = fst.add_state()
    fst.set_start(state)
    fst.set_final(state, -math.log(probabilities[-1]))
    for word_id, p in enumerate(probabilities[:-1], start=1):
        fst.add_arc(state, pynini.Arc(word_id, word_id, -math.log(p), state))
    return fst


def build(out_dir: Path) -> None:
    words = sorted(LEXICON)
    lg = pynini.compose(lexicon(words).arcsort("olabel"), grammar(words))
    tlg = pynini.compose(ctc_topology().arcsort("olabel"), lg.arcsort("ilabel")).connect()
    out_dir.mkdir(parents=True, exist_ok=True)
    pywrapfst.convert(tlg, "const").write(str(out_dir / "example_tlg.fst"))
    (out_dir / "example_tokens.txt").write_text(
        "".join(f"{s} {i}\n" for i, s in enumerate(["<eps>", "<blk>", *PHONES])))
    (out_dir / "example_words.txt").write_text(
        "".join(f"{w} {i}\n" for i, w in enumerate(["<eps>", *words])))
    print(f"{out_dir / 'example_tlg.fst'}: {tlg.num_states()} states")


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "wfst" / "data")
