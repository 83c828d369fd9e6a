"""lattice.AlignmentLexicon: CTC collapse, matching words to pronunciations in
order (with backtracking over variants), typed errors, and its use by
Lattice.word_alignment / Result."""

import numpy as np
import pytest

import wfst
from lattice import AlignmentLexicon, LatticeError, WordAlignmentError
from wfst import SymbolTable
from wfst.example import load_example

TOKENS = SymbolTable.from_pairs([("<eps>", 0), ("<blk>", 1), ("A", 2), ("B", 3), ("C", 4)])
WORDS = SymbolTable.from_pairs([("<eps>", 0), ("x", 1), ("y", 2), ("z", 3), ("w", 4)])
LEXICON = {"x": [("A", "B"), ("A",)], "y": [("B",)], "z": [("C", "C")], "unused": [("Q",)]}
#                     frame:  0  1  2  3  4  5  6  7  8  9 10 11
FRAMES = np.array([1, 2, 2, 1, 3, 3, 1, 1, 4, 1, 4, 1], np.int32)  # blk A A blk B B blk blk C blk C blk


@pytest.fixture
def lexicon():
    return AlignmentLexicon(LEXICON, WORDS, TOKENS)


def test_words_span_their_tokens_frames(lexicon):
    # x takes its first pronunciation (A B); the blanks between words belong to none
    assert lexicon.align(FRAMES, [1, 3]) == [(1, 1, 5), (3, 8, 10)]
    # x A then y B: the first pronunciation of x would leave y nothing, so the match backtracks
    assert lexicon.align(FRAMES, [1, 2, 3]) == [(1, 1, 2), (2, 4, 5), (3, 8, 10)]
    assert lexicon.align(np.array([2, 2, 2, 3]), [1]) == [(1, 0, 3)]  # repeats collapse, no blank needed between A B
    assert lexicon.align(np.array([1, 1]), []) == []
    assert lexicon.align(np.zeros(0, np.int32), []) == []


@pytest.mark.parametrize("x_prons,want", [
    ([("A", "B"), ("A",)], [(1, 0, 2), (2, 4, 4)]),  # x = A B (frames 0-2), y = C (frame 4)
    ([("A",), ("A", "B")], [(1, 0, 1), (2, 2, 4)]),  # x = A (frames 0-1), y = B C (frames 2-4)
])
def test_tokens_two_words_can_split_go_by_the_first_word_s_lexicon_order(x_prons, want):
    """A B C spells x y as (A B)(C) or (A)(B C): x takes its first pronunciation
    that lets y finish, whichever ends earlier."""
    lexicon = AlignmentLexicon({"x": x_prons, "y": [("C",), ("B", "C")]}, WORDS, TOKENS)
    assert lexicon.align(np.array([2, 2, 3, 1, 4], np.int32), [1, 2]) == want  # A A B blk C


def test_mismatches_raise_word_alignment_errors(lexicon):
    with pytest.raises(WordAlignmentError, match="'y' \\(id 2\\) \\(position 0") as info:
        lexicon.align(FRAMES, [2, 3])
    assert (info.value.word, info.value.position) == (2, 0)
    with pytest.raises(WordAlignmentError, match="'w' \\(id 4\\).*no pronunciation"):
        lexicon.align(FRAMES, [1, 4])
    with pytest.raises(WordAlignmentError, match="spell 2 of its 4 tokens.*C C"):
        lexicon.align(FRAMES, [1])
    with pytest.raises(LatticeError, match="1-D integer"):
        lexicon.align(FRAMES.astype(np.float32), [1, 3])
    assert issubclass(WordAlignmentError, LatticeError) and issubclass(WordAlignmentError, ValueError)


def test_construction_errors():
    with pytest.raises(LatticeError, match="blank token '<b>'"):
        AlignmentLexicon(LEXICON, WORDS, TOKENS, blank="<b>")
    with pytest.raises(LatticeError, match="word 'x': phone 'D'"):
        AlignmentLexicon({"x": [("D",)]}, WORDS, TOKENS)
    with pytest.raises(LatticeError, match="lexicon must be"):
        AlignmentLexicon(42, WORDS, TOKENS)


def test_example_from_files_and_on_results():
    """Read from the example's files; aligns the lattice's best path and the
    decoder's Result alike (their alignments may differ where two cost the
    same up to float32 rounding): each word's frames collapse to one of its
    pronunciations and start and end on a token, not a blank."""
    example = load_example()
    lexicon = AlignmentLexicon(example.lexicon_path, example.words_path, example.tokens_path)
    config = wfst.DecoderConfig(acoustic_scale=example.acoustic_scale)
    for result in wfst.Decoder(example.fst, config, device="cpu").decode(example.scores[:3]):
        path = result.lattice.best_path()
        assert result.lattice.word_alignment(lexicon) == lexicon.align(path.ilabels, path.words)
        for ilabels, words in ((path.ilabels, path.words), (result.alignment, result.words)):
            spans = lexicon.align(ilabels, words)
            assert [w for w, _, _ in spans] == list(words)
            for word, first, last in spans:
                frames = ilabels[first:last + 1]
                assert frames[0] != 1 and frames[-1] != 1
                keep = np.append(True, frames[1:] != frames[:-1]) & (frames != 1)
                assert tuple(frames[keep].tolist()) in lexicon.pronunciations[word]
