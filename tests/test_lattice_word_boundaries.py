"""Acceptance: on synthetic CTC posteriors, the best path's word boundaries fall
inside the frames of the reference word plus the blanks around it, for at least
99% of the correctly recognized words.

Word times come from the lexicon (lattice.AlignmentLexicon): the example
TLG's determinization puts word labels past the words' first phones, where
the label-based times fail about 70% of the words. The embedded example's
graph and lexicon; sentences are its references. The
synthesizer's frame layout depends on the seed, not on the difficulty, so the
same sentences at difficulty 0 (the target token wins every frame) give the
reference layout: which frames carry which phone spike. A reference word spans
from its first phone's first spike frame to its last phone's last spike frame;
with the surrounding blanks, from the frame after the previous word's last
spike to the frame before the next word's first spike (utterance edges
included)."""

import numpy as np

import wfst
from lattice import AlignmentLexicon
from bench.workload.posteriors import synthesize
from wfst.example import load_example
from wfst.lexicon import read_lexicon
from wfst.wer import align

SEED = 7
UTTERANCES = 12


def _reference_spans(layout_scores: np.ndarray, words, lexicon, blank_column: int):
    """(first, last) frames of each reference word with its surrounding blanks."""
    target = layout_scores.argmax(axis=1)
    spike = target != blank_column
    # a phone is a run of equal non-blank targets (a repeated phone always has a blank between)
    starts = np.flatnonzero(spike & np.append(True, target[1:] != target[:-1]))
    ends = np.flatnonzero(spike & np.append(target[:-1] != target[1:], True))
    phones_per_word = [len(lexicon[w][0]) for w in words]
    assert len(starts) == sum(phones_per_word)
    bounds = np.cumsum([0] + phones_per_word)
    first_spike = starts[bounds[:-1]]
    last_spike = ends[bounds[1:] - 1]
    lo = np.append(0, last_spike[:-1] + 1)
    hi = np.append(first_spike[1:] - 1, len(target) - 1)
    return list(zip(lo.tolist(), hi.tolist()))


def _matches(ref, hyp):
    """(reference index, hypothesis index) of each correctly recognized word."""
    r = h = 0
    for ref_word, hyp_word in align(ref, hyp).alignment:
        if ref_word is not None and ref_word == hyp_word:
            yield r, h
        r += ref_word is not None
        h += hyp_word is not None


def test_best_path_word_boundaries_fall_inside_the_reference_words():
    example = load_example()
    lexicon = read_lexicon(example.lexicon_path)
    aligner = AlignmentLexicon(lexicon, example.words, example.tokens)
    sentences = [list(ref) for ref in example.references[:UTTERANCES]]
    kwargs = dict(seed=SEED, frame_shift=example.frame_shift, pronunciation="first")
    layout = synthesize(sentences, lexicon, example.tokens, difficulty=0.0, **kwargs)
    noisy = synthesize(sentences, lexicon, example.tokens, difficulty=0.3, **kwargs)
    blank_column = example.tokens["<blk>"] - 1
    config = wfst.DecoderConfig(beam=12.0, lattice_beam=6.0, acoustic_scale=example.acoustic_scale)
    results = wfst.Decoder(example.fst, config, device="cpu").decode(
        [noisy.utterance(i) for i in range(UTTERANCES)])
    correct = inside = 0
    for i, result in enumerate(results):
        ref = sentences[i]
        spans = _reference_spans(layout.utterance(i), ref, lexicon, blank_column)
        hyp_frames = result.lattice.word_alignment(aligner)
        hyp = [example.words[w] for w, _, _ in hyp_frames]
        assert tuple(w for w, _, _ in hyp_frames) == result.words
        for r, h in _matches(ref, hyp):
            correct += 1
            lo, hi = spans[r]
            _, first, last = hyp_frames[h]
            inside += lo <= first and last <= hi
    assert correct >= 100
    assert inside >= 0.99 * correct, (inside, correct)
