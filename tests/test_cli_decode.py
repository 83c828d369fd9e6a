"""``wfst-decode``: the command's results against the Python API and wfst.wer,
every score input form, resumption after a kill, bad input and output-directory
safety. All on the embedded example (a small TLG; each test takes seconds)."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import kaldiio
import numpy as np
import pytest

import wfst
from lattice import AlignmentLexicon, Lattice, read_lattices
from wfst.cli_decode import (EXIT_OK, EXIT_SKIPPED, EXIT_STOPPED, EXIT_UNUSABLE, _config, _kaldi_booleans,
                             _parser, main)
from wfst.decode_outputs import LineFile, complete_lines
from wfst.example import load_example
from wfst.score_archive import Workload
from wfst.wer import compute_wer, read_transcripts

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ex():
    return load_example()


@pytest.fixture(scope="module")
def api_text(ex):
    """The example's transcripts from the Python API: utt id -> words."""
    decoder = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale))
    results = decoder.decode(ex.scores)
    return {u: tuple(ex.words[w] for w in r.words) for u, r in zip(ex.utterance_ids, results)}


def decode(ex, scores, outdir, *options):
    """Run wfst-decode on the example's graph; returns the exit code."""
    return main([str(ex.graph_path), str(ex.words_path), str(scores), str(outdir),
                 "--acoustic-scale", str(ex.acoustic_scale), "--threads", "1", *map(str, options)])


def workload(ex, ids=None, repeat=1):
    """The example's utterances (a subset, or repeated) as a Workload."""
    ids = list(range(len(ex.scores))) if ids is None else ids
    picks = [i for _ in range(repeat) for i in ids]
    scores = [ex.scores[i] for i in picks]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in scores])]).astype(np.int64)
    return Workload(np.concatenate(scores), offsets, tuple(f"u{k:04d}" for k in range(len(picks))), ex.frame_shift)


def test_same_transcripts_and_wer_as_the_api(ex, api_text, tmp_path, capsys):
    assert decode(ex, ex.scores_path, tmp_path / "out", "--ref", ex.text_path, "--ctm") == EXIT_OK
    text = read_transcripts(tmp_path / "out" / "text")
    assert list(text) == ex.utterance_ids and text == api_text
    stats = compute_wer(dict(zip(ex.utterance_ids, ex.references)), api_text)
    wer_file = (tmp_path / "out" / "wer").read_text().splitlines()
    assert wer_file[0] == str(stats)
    per_utt = {line.split()[0]: list(map(int, line.split()[1:])) for line in wer_file[4:]}
    assert per_utt == {u.utt_id: [u.ref_words, u.errors, u.substitutions, u.insertions, u.deletions]
                       for u in stats.utterances}
    out = capsys.readouterr().out
    assert f"{stats}" in out and "RTFx" in out and "20 decoded, 0 skipped" in out
    audio = sum(len(s) for s in ex.scores) * ex.frame_shift
    assert f"audio       {audio:.1f} s" in out


def test_ctm_follows_the_word_frames(ex, tmp_path):
    assert decode(ex, ex.scores_path, tmp_path / "out", "--ctm", "--frame-shift", "0.02") == EXIT_OK
    result = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale)).decode(ex.scores[0])
    lines = [line.split() for line in (tmp_path / "out" / "ctm").read_text().splitlines()]
    first = [fields for fields in lines if fields[0] == ex.utterance_ids[0]]
    assert len(first) == len(result.words)
    for fields, word, (begin, end) in zip(first, result.words, result.word_frames):
        assert fields[1] == "1" and fields[4] == ex.words[word]
        assert float(fields[2]) == pytest.approx(begin * 0.02)
        assert float(fields[3]) == pytest.approx((end - begin + 1) * 0.02)
    assert {fields[0] for fields in lines} <= set(ex.utterance_ids)


def test_ctm_with_the_lexicon_has_the_pronunciations_frames(ex, tmp_path, capsys):
    out = tmp_path / "out"
    assert decode(ex, ex.scores_path, out, "--ctm", "--lexicon", ex.lexicon_path, "--tokens", ex.tokens_path) == EXIT_OK
    aligner = AlignmentLexicon(ex.lexicon_path, ex.words, ex.tokens)
    results = wfst.Decoder(ex.fst, wfst.DecoderConfig(acoustic_scale=ex.acoustic_scale)).decode(ex.scores)
    want = [f"{u} 1 {first * ex.frame_shift:.3f} {(last - first + 1) * ex.frame_shift:.3f} {ex.words[w]}\n"
            for u, r in zip(ex.utterance_ids, results) for w, first, last in aligner.align(r.alignment, r.words)]
    assert (out / "ctm").read_text().splitlines(keepends=True) == want
    label_times = tmp_path / "labels"
    assert decode(ex, ex.scores_path, label_times, "--ctm") == EXIT_OK
    assert (label_times / "ctm").read_text() != (out / "ctm").read_text()  # the example's labels come late
    partial = tmp_path / "partial.txt"  # the lexicon without its last word: refused before any decoding
    lines = ex.lexicon_path.read_text().splitlines(keepends=True)
    partial.write_text("".join(line for line in lines if line.split()[0] != lines[-1].split()[0]))
    for bad in (["--ctm", "--lexicon", partial, "--tokens", ex.tokens_path],
                ["--ctm", "--lexicon", tmp_path / "missing.txt", "--tokens", ex.tokens_path],
                ["--lexicon", ex.lexicon_path, "--tokens", ex.tokens_path],  # no --ctm
                ["--ctm", "--lexicon", ex.lexicon_path],  # no --tokens
                ["--ctm", "--tokens", ex.tokens_path],  # no --lexicon
                ["--ctm", "--lexicon", ex.lexicon_path, "--tokens", ex.tokens_path, "--blank", "<nope>"]):
        assert decode(ex, ex.scores_path, tmp_path / "bad", *bad) == EXIT_UNUSABLE
        err = capsys.readouterr().err
        assert "error" in err and "Traceback" not in err and not (tmp_path / "bad").exists()
        if bad[2] == partial:
            assert "1 words the graph can output have no pronunciation" in err


@pytest.mark.parametrize("form", ["ark", "ark-text", "scp", "scp-text", "pipe", "npz", "npy-dir"])
def test_every_score_input_gives_the_same_text(ex, api_text, tmp_path, form):
    subset = workload(ex, ids=[0, 3, 7])
    arrays = {u: subset.utterance(i) for i, u in enumerate(subset.utt_ids)}
    expected = {u: api_text[ex.utterance_ids[i]] for u, i in zip(subset.utt_ids, [0, 3, 7])}
    text_form = form.endswith("-text")
    if form == "npz":
        spec = tmp_path / "scores.npz"
        subset.save(spec)
    elif form == "npy-dir":
        spec = tmp_path / "npy"
        spec.mkdir()
        for u, matrix in arrays.items():
            np.save(spec / f"{u}.npy", matrix)
    else:
        kaldiio.save_ark(str(tmp_path / "s.ark"), arrays, scp=str(tmp_path / "s.scp"), text=text_form)
        spec = {"ark": f"ark:{tmp_path / 's.ark'}", "ark-text": f"ark,t:{tmp_path / 's.ark'}",
                "scp": f"scp:{tmp_path / 's.scp'}", "scp-text": f"scp:{tmp_path / 's.scp'}",
                "pipe": f"ark:cat {tmp_path / 's.ark'} |"}[form]
    assert decode(ex, spec, tmp_path / "out") == EXIT_OK
    text = read_transcripts(tmp_path / "out" / "text")
    assert list(text) == list(subset.utt_ids) and text == expected


def test_score_sources_read_kaldi_indexes_flags_and_npy_directories(ex, tmp_path):
    """open_scores directly: an scp index with blank lines, the 'b' flag Kaldi's
    rspecifiers allow, a directory's .npy files only (not a folder named like
    one), and a corrupt .npy file costing its own utterance (a ScoresError when
    loaded), not the run."""
    from wfst.score_sources import open_scores

    arrays = {f"u{i}": ex.scores[i][:5] for i in range(2)}
    kaldiio.save_ark(str(tmp_path / "s.ark"), arrays, scp=str(tmp_path / "s.scp"))
    (tmp_path / "blank.scp").write_text("\n" + (tmp_path / "s.scp").read_text().replace("\n", "\n \n"))
    for spec in (f"scp:{tmp_path / 'blank.scp'}", f"ark,b:{tmp_path / 's.ark'}"):
        got = {utt_id: load() for utt_id, load in open_scores(spec)}
        assert list(got) == ["u0", "u1"] and all(np.array_equal(got[u], arrays[u]) for u in arrays), spec
    npy = tmp_path / "npy"
    npy.mkdir()
    np.save(npy / "b.npy", arrays["u0"])
    (npy / "a.npy").write_bytes(b"\x93NUMPY not a matrix")
    (npy / "c.npy").mkdir()
    source = open_scores(str(npy))
    assert source.count == 2
    (a, load_a), (b, load_b) = list(source)
    assert (a, b) == ("a", "b") and np.array_equal(load_b(), arrays["u0"])
    with pytest.raises(wfst.ScoresError, match="cannot read .*a.npy"):
        load_a()


def test_score_specifiers_that_name_nothing_readable(tmp_path):
    from wfst.score_sources import ScoreSourceError, open_scores

    (tmp_path / "s.ark").write_bytes(b"")
    for spec, message in [(f"ark,scp:{tmp_path / 's.ark'}", "exactly one of ark or scp"),
                          ("ark:", "nothing after the ':'")]:
        with pytest.raises(ScoreSourceError, match=message):
            open_scores(spec)
    assert open_scores("ark:-").description == "Kaldi archive -"  # standard input: read when iterated
    (tmp_path / "m.ark").write_bytes(b"utt \0BFM \x04\x01\x00\x00\x00\x04\x01\x00\x00\x00\x00\x00\x80\xbf")
    with pytest.raises(ScoreSourceError, match=f"not UTF-8 text .*; for an archive write ark:{tmp_path / 'm.ark'}"):
        open_scores(f"scp:{tmp_path / 'm.ark'}")  # an archive given as the index


def test_score_identity_tells_kinds_apart_and_ignores_commands(tmp_path, monkeypatch):
    from wfst.score_sources import score_file, score_identity

    monkeypatch.chdir(tmp_path)
    path = str(tmp_path / "s.ark")
    assert score_identity("ark:s.ark") == score_identity(f"ark,t:{path}") == f"ark:{path}"
    assert score_identity(f"scp:{path}") != score_identity(f"ark:{path}")
    assert score_identity("s.npz") == str(tmp_path / "s.npz")
    for spec in ("ark:-", "ark:gunzip -c s.ark.gz |", "ark:gunzip -c s.ark.gz | ", "scp:| ls"):
        assert score_file(spec) is None and score_identity(spec) == "a command or standard input", spec


def test_pdf_map_in_text_and_npy(ex, api_text, tmp_path, capsys):
    """Columns permuted in the scores and undone by a pdf map give the same text."""
    width = ex.scores[0].shape[1]
    perm = np.random.default_rng(0).permutation(width)  # input label i reads column perm[i - 1]
    pdf_map = np.concatenate([[0], perm]).astype(np.int64)
    scores = tmp_path / "npy"
    scores.mkdir()
    for u, matrix in list(zip(ex.utterance_ids, ex.scores))[:3]:
        permuted = np.empty_like(matrix)
        permuted[:, perm] = matrix
        np.save(scores / f"{u}.npy", permuted)
    np.save(tmp_path / "map.npy", pdf_map)
    (tmp_path / "map.txt").write_text("# transition-id pdf\n" + "".join(f"{t} {p}\n" for t, p in
                                                                           enumerate(pdf_map) if t > 0))
    for name in ("map.npy", "map.txt"):
        assert decode(ex, scores, tmp_path / f"out-{name}", "--pdf-map", tmp_path / name) == EXIT_OK
        text = read_transcripts(tmp_path / f"out-{name}" / "text")
        assert text == {u: api_text[u] for u in ex.utterance_ids[:3]}
    (tmp_path / "short.txt").write_text("1 0\n2 1\n")
    assert decode(ex, scores, tmp_path / "short", "--pdf-map", tmp_path / "short.txt") == EXIT_UNUSABLE
    err = capsys.readouterr().err
    assert f"with --pdf-map {tmp_path / 'short.txt'}: pdf_map has 3 entries (input labels 0..2)" in err
    (tmp_path / "gap.txt").write_text("".join(f"{t} {p}\n" for t, p in enumerate(pdf_map) if t not in (0, 7)))
    assert decode(ex, scores, tmp_path / "gap", "--pdf-map", tmp_path / "gap.txt") == EXIT_UNUSABLE
    assert "the map has no column for it (a transition id missing" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (b"1 0\n2 1 7\n", "line 2: expected 'transition-id pdf'"),
    (b"1 0\n2 1\n1 3\n", "line 3: transition id 1 maps to pdf 0 and to 3"),
    (b"# only a comment\n\n", "the pdf map is empty"),
    (b"1 0\n2 4294967296\n", "line 2: ids must not exceed"),
    (b"\xff\xfe\x00binary", "neither a .npy file nor UTF-8 text"),
    (b"\x93NUMPY garbage", "cannot read the .npy pdf map"),
], ids=["three fields", "repeated id", "empty", "pdf too large", "binary", "bad npy"])
def test_bad_pdf_map_files_are_pdf_map_errors(tmp_path, content, message):
    """A malformed --pdf-map file raises PdfMapError (a WfstError: exit 2, no
    traceback) saying what is wrong and on which line."""
    from wfst.pdf_map import PdfMapError, read_pdf_map

    (tmp_path / "map").write_bytes(content)
    with pytest.raises(PdfMapError, match=message):
        read_pdf_map(tmp_path / "map")


def test_pdf_map_files_map_unlisted_ids_to_minus_one(tmp_path):
    """Transition ids a text map does not list map to -1 (so the decoder can
    report the ones the graph uses); a .npy map must be 1-D, its pdfs >= -1."""
    from wfst.pdf_map import PdfMapError, read_pdf_map

    (tmp_path / "gaps.txt").write_text("1 0\n3 2  # no line for 2\n")
    assert read_pdf_map(tmp_path / "gaps.txt").tolist() == [-1, 0, -1, 2]
    for bad in (np.zeros((2, 3), np.int64), np.array([-1, 0, -2])):
        np.save(tmp_path / "bad.npy", bad)
        with pytest.raises(PdfMapError, match="1-D integer array|must lie in"):
            read_pdf_map(tmp_path / "bad.npy")


def test_bad_utterances_are_skipped(ex, api_text, tmp_path, capsys):
    good = ex.scores[0]
    nan = good.copy()
    nan[5, 2] = np.nan
    entries = {"a_good": good, "b_nan": nan, "c_narrow": good[:, :10], "d_empty": good[:0], "e_good": ex.scores[1],
               "f\x07bell": good}
    with kaldiio.WriteHelper(f"ark:{tmp_path / 's.ark'}") as writer:
        for key, matrix in entries.items():
            writer(key, matrix)
        writer("a_good", ex.scores[2])  # a repeated id
    assert decode(ex, f"ark:{tmp_path / 's.ark'}", tmp_path / "out", "--lanes", "2") == EXIT_SKIPPED
    text = read_transcripts(tmp_path / "out" / "text")
    assert text == {"a_good": api_text[ex.utterance_ids[0]], "e_good": api_text[ex.utterance_ids[1]]}
    skipped = (tmp_path / "out" / "skipped").read_text().splitlines()
    assert [line.split()[0] for line in skipped] == ["b_nan", "c_narrow", "d_empty", "f\\x07bell", "a_good"]
    assert "nan" in skipped[0] and "columns" in skipped[1] and "zero frames" in skipped[2]
    assert "unprintable" in skipped[3] and "before" in skipped[4]
    captured = capsys.readouterr()
    assert captured.err.count("skipped") >= 5 and "2 decoded, 5 skipped" in captured.out
    assert "Traceback" not in captured.err


def test_partial_and_failed_utterances_are_warned_about_and_counted(tmp_path, capsys):
    """As Kaldi's decoders warn: one utterance ends off a final state (its best partial path is
    written), one where no token survives the graph's dead end (an empty transcript)."""
    (tmp_path / "g.txt").write_text("0 1 1 1 0.5\n1 2 1 0 0.5\n2 0\n")  # final after exactly two frames
    (tmp_path / "words.txt").write_text("<eps> 0\nhello 1\n")
    wfst.read_fst(tmp_path / "g.txt").write(tmp_path / "g.fst")
    with kaldiio.WriteHelper(f"ark:{tmp_path / 's.ark'}") as writer:
        for key, frames in (("final", 2), ("partial", 1), ("dead", 3)):
            writer(key, np.zeros((frames, 1), np.float32))
    assert main([str(tmp_path / "g.fst"), str(tmp_path / "words.txt"), f"ark:{tmp_path / 's.ark'}",
                 str(tmp_path / "out"), "--threads", "1"]) == EXIT_OK
    assert (tmp_path / "out" / "text").read_text() == "final hello\npartial hello\ndead\n"
    captured = capsys.readouterr()
    assert "partial: no final state reached" in captured.err and "dead: no token survived" in captured.err
    assert "final:" not in captured.err
    assert "1 without a final state (partial); 1 with no surviving token (empty)" in captured.out


def test_ids_refused_for_their_whitespace_are_one_field_of_their_skipped_line(ex, tmp_path, capsys):
    """Files whose names hold a space or a line break are skipped (an id is one
    field of every output line); OUTDIR/skipped and stderr still give each one
    line whose first field is the id, its whitespace written as escapes."""
    scores = tmp_path / "scores"
    scores.mkdir()
    for name in ("good", "bad id", "two\nlines"):
        np.save(scores / f"{name}.npy", ex.scores[0])
    assert decode(ex, scores, tmp_path / "out") == EXIT_SKIPPED
    assert list(read_transcripts(tmp_path / "out" / "text")) == ["good"]
    skipped = (tmp_path / "out" / "skipped").read_text().splitlines()
    assert sorted(line.split()[0] for line in skipped) == ["bad\\x20id", "two\\x0alines"]
    err = capsys.readouterr().err
    assert "skipped bad\\x20id: " in err and "skipped two\\x0alines: " in err


def test_an_outdir_that_is_a_file_is_refused_and_kept(ex, tmp_path, capsys):
    """OUTDIR naming a file: exit 2 with the reason, and the file unchanged."""
    path = tmp_path / "results"
    path.write_text("mine\n")
    assert decode(ex, ex.scores_path, path) == EXIT_UNUSABLE
    assert "exists and is not a directory" in capsys.readouterr().err and path.read_text() == "mine\n"


def test_archive_broken_part_way_stops_and_keeps_results(ex, tmp_path, capsys):
    arrays = {f"u{i}": ex.scores[i] for i in range(3)}
    kaldiio.save_ark(str(tmp_path / "s.ark"), arrays)
    data = (tmp_path / "s.ark").read_bytes()
    (tmp_path / "s.ark").write_bytes(data[:-200])  # the third matrix is cut short
    for lanes in ("1", "4"):  # (4: the utterances read before the break are one batch, decoded and kept)
        outdir = tmp_path / f"out{lanes}"
        assert decode(ex, f"ark:{tmp_path / 's.ark'}", outdir, "--lanes", lanes) == EXIT_STOPPED
        assert list(read_transcripts(outdir / "text")) == ["u0", "u1"]
    err = capsys.readouterr().err
    assert "unreadable after utterance 'u1'" in err and "--resume" in err and "Traceback" not in err


def test_bad_graph_words_and_inputs_fail_fast(ex, tmp_path, capsys):
    bad_graph = tmp_path / "bad.fst"
    bad_graph.write_bytes(ex.graph_path.read_bytes()[:-100])
    words = tmp_path / "words.txt"
    words.write_text("<eps> 0\nhello 1\n")
    malformed = tmp_path / "malformed.npz"  # a workload whose metadata is not JSON
    np.savez(malformed, **{**np.load(ex.scores_path), "metadata": np.array("{oops")})
    cases = [
        [ex.graph_path, ex.words_path, malformed],
        [bad_graph, ex.words_path, ex.scores_path],
        [tmp_path / "missing.fst", ex.words_path, ex.scores_path],
        [ex.graph_path, words, ex.scores_path],
        [ex.graph_path, tmp_path / "missing.txt", ex.scores_path],
        [ex.graph_path, ex.words_path, tmp_path / "missing.npz"],
        [ex.graph_path, ex.words_path, ex.words_path],  # not scores
        [ex.graph_path, ex.words_path, "ark,scp:a,b"],
    ]
    for number, (graph, word_table, scores) in enumerate(cases):
        outdir = tmp_path / f"out{number}"
        assert main([str(graph), str(word_table), str(scores), str(outdir)]) == EXIT_UNUSABLE, number
        assert not outdir.exists(), number  # nothing was started
    err = capsys.readouterr().err
    assert err.count("wfst-decode: error:") == len(cases) and "Traceback" not in err
    assert "truncated" in err and "not in this words.txt" in err and "ark:" in err and "'metadata': not JSON" in err


def test_text_files_that_are_not_utf8_are_refused_by_line(ex, tmp_path, capsys):
    """A --ref, or a workload's .text, that is not UTF-8 (an old Latin-1
    corpus) is refused with exit 2, naming the file and the line, and nothing
    is started."""
    latin1 = ex.text_path.read_text().replace("\n", " caf\u00e9\n", 2).encode("latin-1")
    (tmp_path / "ref.txt").write_bytes(latin1)
    assert decode(ex, ex.scores_path, tmp_path / "a", "--ref", tmp_path / "ref.txt") == EXIT_UNUSABLE
    (tmp_path / "set.npz").write_bytes(ex.scores_path.read_bytes())
    (tmp_path / "set.text").write_bytes(latin1)
    assert decode(ex, tmp_path / "set.npz", tmp_path / "b") == EXIT_UNUSABLE
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    err = capsys.readouterr().err
    assert f"--ref {tmp_path / 'ref.txt'}: line 1: not valid UTF-8" in err
    assert f"{tmp_path / 'set.text'}: line 1: not valid UTF-8" in err and "Traceback" not in err


def test_outdir_is_never_overwritten_without_asking(ex, tmp_path, capsys):
    theirs = tmp_path / "theirs"  # a directory wfst-decode did not write: nothing there is its to replace
    theirs.mkdir()
    (theirs / "text").write_text("x y\n")
    for options in ([], ["--resume"], ["--overwrite"]):
        assert decode(ex, ex.scores_path, theirs, *options) == EXIT_UNUSABLE, options
    assert (theirs / "text").read_text() == "x y\n" and sorted(p.name for p in theirs.iterdir()) == ["text"]
    ours = tmp_path / "ours"
    assert decode(ex, ex.scores_path, ours) == EXIT_OK
    (ours / "mine.txt").write_text("precious")
    assert decode(ex, ex.scores_path, ours) == EXIT_UNUSABLE
    assert decode(ex, ex.scores_path, ours, "--overwrite", "--resume") == EXIT_UNUSABLE
    assert decode(ex, ex.scores_path, ours, "--overwrite") == EXIT_OK
    assert (ours / "mine.txt").read_text() == "precious" and len(complete_lines(ours / "text")) == 20
    assert decode(ex, ex.scores_path, ours, "--resume", "--beam", "9") == EXIT_UNUSABLE  # other settings
    err = capsys.readouterr().err
    assert "did not write" in err and "--resume" in err and "--overwrite" in err and "beam" in err


def test_no_input_is_among_the_files_it_writes(ex, tmp_path, capsys):
    outdir = tmp_path / "out"
    assert decode(ex, ex.scores_path, outdir) == EXIT_OK
    hypotheses = (outdir / "text").read_bytes()
    assert decode(ex, ex.scores_path, outdir, "--overwrite", "--ref", outdir / "text") == EXIT_UNUSABLE
    assert decode(ex, f"ark:{outdir / 'text'}", outdir, "--overwrite") == EXIT_UNUSABLE
    os.link(outdir / "text", tmp_path / "linked.txt")  # the same file by another name
    assert decode(ex, ex.scores_path, outdir, "--resume", "--ref", tmp_path / "linked.txt") == EXIT_UNUSABLE
    assert (outdir / "text").read_bytes() == hypotheses
    err = capsys.readouterr().err
    assert "--ref" in err and "SCORES" in err and "OUTDIR's text" in err


def test_resume_refuses_another_graph_words_or_scores(ex, tmp_path, capsys, monkeypatch):
    workload(ex, [0, 1, 2]).save(tmp_path / "a.npz")
    workload(ex, [3, 4]).save(tmp_path / "b.npz")
    graph, words = tmp_path / "copy.fst", tmp_path / "copy.txt"
    graph.write_bytes(ex.graph_path.read_bytes())
    words.write_bytes(ex.words_path.read_bytes())
    assert decode(ex, tmp_path / "a.npz", tmp_path / "out") == EXIT_OK
    assert decode(ex, tmp_path / "b.npz", tmp_path / "out", "--resume") == EXIT_UNUSABLE
    common = [str(tmp_path / "a.npz"), str(tmp_path / "out"), "--acoustic-scale", str(ex.acoustic_scale), "--resume"]
    assert main([str(graph), str(ex.words_path), *common]) == EXIT_UNUSABLE
    assert main([str(ex.graph_path), str(words), *common]) == EXIT_UNUSABLE
    assert decode(ex, tmp_path / "a.npz", tmp_path / "out", "--resume") == EXIT_OK  # the same inputs
    monkeypatch.chdir(tmp_path)
    assert decode(ex, "a.npz", tmp_path / "out", "--resume") == EXIT_OK  # the same file, spelled otherwise
    err = capsys.readouterr().err
    assert "other scores" in err and "other graph" in err and "other words" in err


def test_a_failing_or_empty_score_source_is_an_error(ex, tmp_path, capsys):
    arrays = {f"u{i}": ex.scores[i] for i in range(3)}
    kaldiio.save_ark(str(tmp_path / "s.ark"), arrays)
    (tmp_path / "empty.ark").write_bytes(b"")
    assert decode(ex, "ark:exit 3 |", tmp_path / "none") == EXIT_UNUSABLE
    assert decode(ex, f"ark:{tmp_path / 'empty.ark'}", tmp_path / "empty") == EXIT_UNUSABLE
    assert decode(ex, f"scp:echo u0 {tmp_path / 's.ark'}:4; exit 2 |", tmp_path / "index") == EXIT_UNUSABLE
    assert not any((tmp_path / name).exists() for name in ("none", "empty", "index"))  # undone: rerun as is
    err = capsys.readouterr().err
    assert "exited with status 3 after 0 utterance(s)" in err and "hold no utterances" in err
    assert "exited with status 2" in err
    # the command fails after its output: what it gave is decoded and kept (one batch, the default lanes), and
    # the mended command resumes the run
    assert decode(ex, f"ark:cat {tmp_path / 's.ark'}; exit 1 |", tmp_path / "late") == EXIT_STOPPED
    assert list(read_transcripts(tmp_path / "late" / "text")) == ["u0", "u1", "u2"]
    err = capsys.readouterr().err
    assert "exited with status 1 after 3 utterance(s)" in err and "--resume" in err and "Traceback" not in err
    assert decode(ex, f"ark:cat {tmp_path / 's.ark'} |", tmp_path / "late", "--resume") == EXIT_OK
    assert "0 decoded, 0 skipped, 3 already done" in capsys.readouterr().out


def test_a_matrix_that_looks_transposed_and_an_assumed_frame_shift_are_noted(ex, api_text, tmp_path, capsys):
    transposed = {f"u{i}": ex.scores[i].T.copy() for i in range(3)}  # 39 rows; 128, 77 and 121 columns
    kaldiio.save_ark(str(tmp_path / "s.ark"), transposed)
    assert decode(ex, f"ark:{tmp_path / 's.ark'}", tmp_path / "out") == EXIT_OK
    captured = capsys.readouterr()
    assert captured.err.count("note:") == 1 and "transpose" in captured.err and "77 score columns" in captured.err
    assert "frames of 0.01 s, assumed: --frame-shift sets it" in captured.out  # an archive does not say
    assert decode(ex, ex.scores_path, tmp_path / "plain") == EXIT_OK  # the .npz says
    captured = capsys.readouterr()
    assert "note:" not in captured.err and "assumed" not in captured.out


def test_references_that_match_no_utterance_give_no_wer(ex, tmp_path, capsys):
    assert decode(ex, ex.scores_path, tmp_path / "out", "--ref", ex.words_path) == EXIT_OK
    assert not (tmp_path / "out" / "wer").exists()
    captured = capsys.readouterr()
    assert "WER" not in captured.out and "no WER: none of the 20 utterances" in captured.err


def test_bad_numbers_and_a_missing_cupy_are_refused(ex, tmp_path, capsys, monkeypatch):
    for frame_shift in ("0", "-0.01", "inf", "nan"):
        assert decode(ex, ex.scores_path, tmp_path / "a", "--frame-shift", frame_shift) == EXIT_UNUSABLE, frame_shift
    assert not (tmp_path / "a").exists()
    assert main(["example", "--lanes", "0", "--outdir", str(tmp_path / "b")]) == EXIT_UNUSABLE
    with pytest.raises(wfst.ConfigError, match="lanes"):
        wfst.Decoder(ex.fst, lanes=-1)
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert decode(ex, ex.scores_path, tmp_path / "c", "--device", "cuda") == EXIT_UNUSABLE
    assert not (tmp_path / "c").exists()
    err = capsys.readouterr().err
    assert err.count("--frame-shift must be a positive finite number") == 4
    assert "--lanes must be >= 1" in err and "--device cpu" in err
    assert "Traceback" not in err


def test_resume_redoes_a_torn_line_only(ex, tmp_path, capsys):
    full = tmp_path / "full"
    assert decode(ex, ex.scores_path, full, "--ctm") == EXIT_OK
    part = tmp_path / "part"
    assert decode(ex, ex.scores_path, part, "--ctm") == EXIT_OK
    lines = complete_lines(part / "text")
    (part / "text").write_text("".join(lines[:5]) + lines[5][:7])  # five whole lines and a torn one
    assert decode(ex, ex.scores_path, part, "--ctm", "--resume") == EXIT_OK
    assert "15 decoded" in capsys.readouterr().out.split("utterances")[-1]
    for name in ("text", "ctm"):
        assert (part / name).read_text() == (full / name).read_text()


def test_resume_after_kill_matches_an_uninterrupted_run(ex, tmp_path, capsys):
    big = workload(ex, repeat=8)  # 160 utterances: a few seconds of decoding
    big.save(tmp_path / "big.npz")

    def command(outdir, *extra):
        return [sys.executable, "-m", "wfst.cli_decode", str(ex.graph_path), str(ex.words_path),
                str(tmp_path / "big.npz"), str(tmp_path / outdir), "--acoustic-scale", str(ex.acoustic_scale),
                "--threads", "1", "--lanes", "1", "--ctm", "--lattices", "--nbest", "2", *extra]

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(command("killed"), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(complete_lines(tmp_path / "killed" / "text")) < 5 and time.monotonic() < deadline:
        assert child.poll() is None, f"the run ended before it could be killed: {child.stderr.read()}"
        time.sleep(0.01)
    assert child.poll() is None, "the run ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stderr.close()
    done = len(complete_lines(tmp_path / "killed" / "text"))
    assert 5 <= done < len(big)
    assert main(command("killed", "--resume")[3:]) == EXIT_OK  # the rest, in this process
    assert f"{len(big) - done} decoded, 0 skipped, {done} already done" in capsys.readouterr().out
    assert main(command("whole")[3:]) == EXIT_OK
    for name in ("text", "ctm", "lat.ark", "lat.index", "nbest"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_line_file_drops_a_torn_line_and_keeps_what_it_is_told(tmp_path):
    path = tmp_path / "lines"
    path.write_bytes(b"a 1\nb 2\nc 3\nd")
    file = LineFile(path, keep=lambda line: not line.startswith("b"))
    file.append(["e 5\n", "f 6\n"])
    file.close()
    assert path.read_bytes() == b"a 1\nc 3\ne 5\nf 6\n"


def test_options_mirror_the_decoder_config():
    args = _parser().parse_args(["g", "w", "s", "o", "--beam", "9.5", "--max-active", "300", "--min-active", "20",
                                 "--lattice-beam", "4", "--acoustic-scale", "0.1", "--prune-interval", "10",
                                 "--no-use-final-probs", "--token-queue-capacity", "1200",
                                 "--arc-queue-capacity", "4000"])
    assert _config(args) == wfst.DecoderConfig(beam=9.5, max_active=300, min_active=20, lattice_beam=4.0,
                                                acoustic_scale=0.1, prune_interval=10, use_final_probs=False,
                                                token_queue_capacity=1200, arc_queue_capacity=4000)
    assert _config(_parser().parse_args(["g", "w", "s", "o"])) == wfst.DecoderConfig()


def test_kaldi_style_booleans_are_accepted(ex, tmp_path):
    """Kaldi spells on/off options --flag=true|false; argparse refused '--no-use-final-probs=false'-style
    values ('ignored explicit argument')."""
    parser = _parser()
    argv = ["g", "w", "s", "o", "--use-final-probs=False", "--determinize-lattice=false", "--beam=9"]
    args = parser.parse_args(_kaldi_booleans(parser, argv))
    assert args.use_final_probs is False and args.determinize_lattice is False and args.beam == 9.0
    assert parser.parse_args(_kaldi_booleans(parser, argv[:4] + ["--use-final-probs=true"])).use_final_probs
    assert _kaldi_booleans(parser, ["--", "--use-final-probs=false"]) == ["--", "--use-final-probs=false"]
    assert decode(ex, ex.scores_path, tmp_path / "out", "--lattices", "--determinize-lattice=false") == EXIT_OK
    assert all(type(lat) is Lattice for _, lat in read_lattices(tmp_path / "out" / "lat.ark"))


def test_example_command(capsys):
    assert main(["example", "--threads", "1"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "%WER" in out and "RTFx" in out and "20 decoded" in out


def test_console_script_help_documents_exit_codes():
    result = subprocess.run([sys.executable, "-m", "wfst.cli_decode", "--help"], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0
    assert "exit codes" in result.stdout and "--resume" in result.stdout and "ark,t:" in result.stdout


def test_cuda_decodes_the_example_as_the_api_does(cupy_module, ex, api_text, tmp_path, monkeypatch):
    """--device cuda (on a GPU, or on the kernel emulator): --lanes sets the
    decoder's lanes, the transcripts equal the CPU API's, and the lattice
    archive the CPU's byte for byte (lattices are numbered canonically)."""
    from wfst import decoder

    real, made = decoder.Decoder, []
    monkeypatch.setattr(decoder, "Decoder", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    assert decode(ex, ex.scores_path, tmp_path / "out", "--device", "cuda", "--lanes", "3", "--lattices") == EXIT_OK
    assert made[0]._cuda.geometry.lanes == 3
    assert read_transcripts(tmp_path / "out" / "text") == api_text
    assert decode(ex, ex.scores_path, tmp_path / "cpu", "--device", "cpu", "--lattices") == EXIT_OK
    assert (tmp_path / "out" / "lat.ark").read_bytes() == (tmp_path / "cpu" / "lat.ark").read_bytes()


def test_a_run_whose_every_utterance_is_skipped_exits_1(ex, tmp_path, capsys):
    """...and does not blame --ref (the skipped lines say why there is no WER)."""
    with kaldiio.WriteHelper(f"ark:{tmp_path / 's.ark'}") as writer:
        writer("a", ex.scores[0][:0])
        writer("b", ex.scores[0][:, :3])
    assert decode(ex, f"ark:{tmp_path / 's.ark'}", tmp_path / "out", "--ref", ex.text_path) == EXIT_SKIPPED
    assert [line.split()[0] for line in (tmp_path / "out" / "skipped").read_text().splitlines()] == ["a", "b"]
    assert "has a reference" not in capsys.readouterr().err


def test_a_decoder_failure_before_any_result_exits_3_and_keeps_the_outdir(ex, tmp_path, monkeypatch):
    calls = []
    real = wfst.Decoder.decode

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # (the first call is the warm-up)
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(wfst.Decoder, "decode", failing)
    assert decode(ex, ex.scores_path, tmp_path / "out") == EXIT_STOPPED
    assert (tmp_path / "out" / "decode.json").is_file()


def test_an_empty_outdir_given_is_left_empty_when_nothing_decodes(ex, tmp_path):
    (tmp_path / "empty.ark").write_bytes(b"")
    (tmp_path / "out").mkdir()
    assert decode(ex, f"ark:{tmp_path / 'empty.ark'}", tmp_path / "out") == EXIT_UNUSABLE
    assert list((tmp_path / "out").iterdir()) == []


def test_ctrl_c_exits_130(tmp_path, monkeypatch):
    import wfst.cli_decode as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run", interrupted)
    assert main(["g", "w", "s", str(tmp_path / "o")]) == 130


@pytest.mark.parametrize("compiling", [True, False])
def test_a_long_warm_up_says_it_is_compiling(ex, tmp_path, capsys, monkeypatch, compiling):
    """A first run sits quiet for a minute while numba compiles: a warm-up that
    outlasts COMPILE_NOTICE_SECONDS says so on stderr; a quick one says nothing
    (and the notice never comes later)."""
    import time

    import wfst.cli_decode as cli

    warm_up = cli._warm_up

    def slow(decoder):
        decode_one = decoder.decode
        decoder.decode = lambda scores: time.sleep(1.0) or decode_one(scores)  # the warm-up's one frame
        try:
            warm_up(decoder)
        finally:
            decoder.decode = decode_one

    monkeypatch.setattr(cli, "COMPILE_NOTICE_SECONDS", 0.05 if compiling else 2.0)
    monkeypatch.setattr(cli, "_warm_up", slow)
    workload(ex, [0]).save(tmp_path / "one.npz")
    assert decode(ex, tmp_path / "one.npz", tmp_path / "out") == EXIT_OK
    time.sleep(2.5)
    err = capsys.readouterr().err
    assert ("compiling the decoder's kernels" in err) == compiling


def test_lanes_sets_the_utterances_per_decoder_call(ex, tmp_path, monkeypatch):
    """On the CPU, --lanes N decodes the utterances N per decoder call (the last
    call takes the rest); without it, LANES_PER_THREAD (4) per thread."""
    calls = []
    real = wfst.Decoder.decode

    def recording(self, scores):
        if isinstance(scores, list):  # (the warm-up decodes one matrix)
            calls.append(len(scores))
        return real(self, scores)

    monkeypatch.setattr(wfst.Decoder, "decode", recording)
    assert decode(ex, ex.scores_path, tmp_path / "three", "--device", "cpu", "--lanes", "3") == EXIT_OK
    assert calls == [3, 3, 3, 3, 3, 3, 2]  # the example's 20 utterances
    calls.clear()
    assert decode(ex, ex.scores_path, tmp_path / "default", "--device", "cpu") == EXIT_OK  # (--threads 1)
    assert calls == [4, 4, 4, 4, 4]


def test_a_resumed_run_skips_what_the_uninterrupted_run_skipped(ex, tmp_path, capsys):
    """OUTDIR/skipped starts empty on --resume and the ids it listed are tried
    again: an id repeated in the scores is skipped again, listed once, and the
    run exits 1, though its first occurrence was decoded by the run resumed."""
    with kaldiio.WriteHelper(f"ark:{tmp_path / 's.ark'}") as writer:
        writer("a", ex.scores[0])
        writer("b", ex.scores[1])
        writer("a", ex.scores[2])
    out = tmp_path / "out"
    for options in ([], ["--resume"]):
        assert decode(ex, f"ark:{tmp_path / 's.ark'}", out, *options) == EXIT_SKIPPED, options
        skipped = (out / "skipped").read_text().splitlines()
        assert len(skipped) == 1 and skipped[0].split()[0] == "a" and "before" in skipped[0], options
        assert list(read_transcripts(out / "text")) == ["a", "b"]
    assert "0 decoded, 1 skipped, 2 already done" in capsys.readouterr().out


def test_overwrite_decodes_everything_again_and_removes_the_earlier_outputs(ex, tmp_path, capsys):
    """--overwrite starts the run afresh: every utterance is decoded again (none
    is 'already done'), and the files of the earlier run that this one does not
    write (ctm, nbest, lat.ark, lat.index, wer) are gone; the user's file stays."""
    out = tmp_path / "out"
    assert decode(ex, ex.scores_path, out, "--ctm", "--nbest", "2", "--lattices", "--ref", ex.text_path) == EXIT_OK
    (out / "mine.txt").write_text("precious")
    capsys.readouterr()
    assert decode(ex, ex.scores_path, out, "--overwrite") == EXIT_OK
    assert "20 decoded, 0 skipped\n" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["decode.json", "mine.txt", "skipped", "text"]
    assert (out / "mine.txt").read_text() == "precious" and len(complete_lines(out / "text")) == 20


def _identity_pdf_map(ex, path):
    """A pdf map that sends input label i to column i - 1, as no map does."""
    path.write_text("".join(f"{i} {i - 1}\n" for i in range(1, ex.scores[0].shape[1] + 1)))
    return path


@pytest.mark.parametrize("first, second, setting", [
    ([], ["--ctm"], "ctm"),
    (["--nbest", "2"], ["--nbest", "3"], "nbest"),
    ([], ["--frame-shift", "0.02"], "frame_shift"),
    ([], ["--pdf-map", "MAP"], "pdf_map"),
    (["--ctm"], ["--ctm", "--lexicon", "LEXICON", "--tokens", "TOKENS"], "lexicon"),
    (["--ctm", "--lexicon", "LEXICON", "--tokens", "TOKENS"],
     ["--ctm", "--lexicon", "LEXICON", "--tokens", "TOKENS", "--blank", "AA"], "lexicon"),
])
def test_resume_refuses_other_outputs_frame_shift_or_pdf_map(ex, tmp_path, capsys, first, second, setting):
    """--resume continues only the run OUTDIR holds: with another --ctm, --nbest,
    --frame-shift, --pdf-map or --lexicon (or its --blank) the results would mix two settings, so
    it is refused (exit 2, the setting named) and OUTDIR is left as it was."""
    names = {"MAP": _identity_pdf_map(ex, tmp_path / "map.txt"), "LEXICON": ex.lexicon_path,
             "TOKENS": ex.tokens_path}
    first, second = ([names.get(option, option) for option in options] for options in (first, second))
    out = tmp_path / "out"
    assert decode(ex, ex.scores_path, out, *first) == EXIT_OK
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert decode(ex, ex.scores_path, out, *second, "--resume") == EXIT_UNUSABLE
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert f"other {setting} " in capsys.readouterr().err


def test_summary_audio_and_rtfx():
    """The summary's audio is frames x frame shift, and RTFx the seconds of audio
    per second spent in the decoder, then with the outputs' work too (lattice
    determinization can outweigh the search, and Kaldi's latgen times it): 1000
    frames of 0.01 s in 2 s, and 3 s of output work, give 10.0 s, RTFx 5.0 and 2.0."""
    from types import SimpleNamespace

    from wfst.cli_decode import Tally, _summary

    lines = _summary(Tally(decoded=3, frames=1000, decode_seconds=2.0, output_seconds=3.0), 0.01, False, 6.0,
                     SimpleNamespace(device="cpu", threads=1), None).splitlines()
    assert "audio       10.0 s (1000 frames of 0.01 s)" in lines
    assert "RTFx        5.0 in the decoder, 2.0 with the outputs (lattice determinization, n-best, CTM, " \
           "writing: 3.00 s)" in lines


def test_a_frame_shift_given_for_an_archive_is_not_assumed(ex, tmp_path, capsys):
    """The 'assumed' note is for a frame shift neither --frame-shift nor the
    scores gave: a Kaldi archive with --frame-shift gets none."""
    kaldiio.save_ark(str(tmp_path / "s.ark"), {"u0": ex.scores[0]})
    assert decode(ex, f"ark:{tmp_path / 's.ark'}", tmp_path / "out", "--frame-shift", "0.04") == EXIT_OK
    out = capsys.readouterr().out
    assert f"({len(ex.scores[0])} frames of 0.04 s)" in out and "assumed" not in out


def test_example_keeps_an_outdir_it_is_given_and_reruns_there(tmp_path):
    """wfst-decode example --outdir DIR leaves its outputs in DIR (only its
    default temporary directory is removed), and running it again replaces them."""
    out = tmp_path / "example"
    for _ in range(2):
        assert main(["example", "--threads", "1", "--outdir", str(out)]) == EXIT_OK
        assert len(complete_lines(out / "text")) == 20 and (out / "wer").is_file()


def test_example_leaves_another_run_in_its_outdir_alone(ex, tmp_path, capsys):
    """wfst-decode example --outdir DIR replaces only an earlier example run:
    a run of the user's own there (here the example's files at another beam)
    is refused, exit 2, and left as it was."""
    out = tmp_path / "mine"
    assert decode(ex, ex.scores_path, out, "--beam", "9", "--ref", ex.text_path) == EXIT_OK
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["example", "--threads", "1", "--outdir", str(out)]) == EXIT_UNUSABLE
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    err = capsys.readouterr().err
    assert "holds another run (decoded with other config)" in err and "--outdir" in err and "Traceback" not in err


def test_wer_counts_references_and_hypotheses_that_have_no_partner(ex, api_text, tmp_path, capsys):
    """--ref scores the utterances that have both (Kaldi's --mode=present): 3 of
    the 20 decoded here, 2 references naming no decoded utterance. The wer file
    says so as compute-wer does ('Scored 3 sentences, 2 not present in hyp.',
    %SER: the sentences with errors among the 3), and so does the summary."""
    refs = dict(zip(ex.utterance_ids, ex.references))
    chosen = ex.utterance_ids[:3]
    refs[chosen[1]] += ("two", "more")  # at least two errors there: word and sentence errors differ
    (tmp_path / "ref.txt").write_text("".join(f"{u} {' '.join(refs[u])}\n" for u in chosen)
                                      + "gone-1 a b\ngone-2 c\n")
    out = tmp_path / "out"
    assert decode(ex, ex.scores_path, out, "--ref", tmp_path / "ref.txt") == EXIT_OK
    wrong = sum(api_text[u] != refs[u] for u in chosen)
    lines = (out / "wer").read_text().splitlines()
    assert lines[1] == f"%SER {100 * wrong / 3:.2f} [ {wrong} / 3 ]"
    assert lines[2] == "Scored 3 sentences, 2 not present in hyp."
    assert [line.split()[0] for line in lines[4:]] == chosen
    assert ("3 utterances scored, 2 references without a hypothesis, 17 hypotheses without a reference"
            in capsys.readouterr().out)


def test_decode_json_records_the_settings_with_absolute_paths(ex, tmp_path, monkeypatch):
    """decode.json records the run's settings: the inputs as absolute paths (the
    scores as given, too), the frame shift in effect (the .npz's own here), the
    outputs asked for and the search configuration; so a run started with
    relative paths resumes from another directory."""
    monkeypatch.chdir(ex.graph_path.parent)
    out = tmp_path / "out"
    options = ["--acoustic-scale", "0.5", "--threads", "1", "--ctm", "--nbest", "3", "--lattices",
               "--lattice-format", "text"]
    assert main([ex.graph_path.name, ex.words_path.name, ex.scores_path.name, str(out), *options]) == EXIT_OK
    settings = json.loads((out / "decode.json").read_text())
    for key, path in (("graph", ex.graph_path), ("words", ex.words_path), ("scores", ex.scores_path)):
        assert os.path.isabs(settings[key]) and os.path.samefile(settings[key], path), key
    assert settings["scores_given"] == ex.scores_path.name
    assert settings["frame_shift"] == pytest.approx(0.04) and settings["ctm"] is True and settings["nbest"] == 3
    assert settings["lattices"] == {"determinize": True, "binary": False}
    assert settings["config"] == dataclasses.asdict(wfst.DecoderConfig(acoustic_scale=0.5))
    assert settings["pdf_map"] is None and settings["lexicon"] is None
    monkeypatch.chdir(tmp_path)
    assert main([str(ex.graph_path), str(ex.words_path), str(ex.scores_path), str(out), *options,
                 "--resume"]) == EXIT_OK


def test_write_atomically_keeps_the_old_content_when_the_new_cannot_be_written(tmp_path, monkeypatch):
    """write_atomically (decode.json, wer) holds the old content or the new,
    never a mixture: when writing the new one fails (here its sync), the old
    one is still there."""
    from wfst import decode_outputs

    path = tmp_path / "wer"
    path.write_text("old\n")

    def failing(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(decode_outputs.os, "fsync", failing)
    with pytest.raises(OSError):  # (and leaves no temporary file)
        decode_outputs.write_atomically(path, "new\n")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["wer"]


@pytest.mark.parametrize("content", ["[1, 2]\n", "{not json\n"])
def test_resume_refuses_a_decode_json_that_is_not_a_settings_object(ex, tmp_path, capsys, content):
    """A decode.json that is not a JSON object (or not JSON) cannot say what
    the run was: --resume is refused with exit 2 and no traceback, and the
    results are left as they are."""
    out = tmp_path / "out"
    assert decode(ex, ex.scores_path, out) == EXIT_OK
    (out / "decode.json").write_text(content)
    text = (out / "text").read_bytes()
    assert decode(ex, ex.scores_path, out, "--resume") == EXIT_UNUSABLE
    err = capsys.readouterr().err
    assert "decode.json is unreadable" in err and "Traceback" not in err
    assert (out / "text").read_bytes() == text and (out / "decode.json").read_text() == content


@pytest.mark.parametrize("name, options", [("wer", []), ("lat.index", ["--lattices"])])
def test_a_reference_among_the_files_it_writes_is_refused_and_kept(ex, tmp_path, capsys, name, options):
    """--ref naming one of the files wfst-decode writes in OUTDIR (wer,
    lat.index) is refused, even with --overwrite, which would replace it."""
    out = tmp_path / "out"
    assert decode(ex, ex.scores_path, out, *options, "--ref", ex.text_path) == EXIT_OK
    given = (out / name).read_bytes()
    assert decode(ex, ex.scores_path, out, *options, "--overwrite", "--ref", out / name) == EXIT_UNUSABLE
    assert (out / name).read_bytes() == given
    assert f"OUTDIR's {name}" in capsys.readouterr().err


def test_a_resumed_run_that_reads_nothing_leaves_the_outdir_it_continues(ex, tmp_path):
    """Only an OUTDIR the run made (or found empty) is undone when its scores
    give nothing: a resumed run whose scores command fails at once keeps the
    earlier run's decode.json, so the run can still be resumed."""
    with kaldiio.WriteHelper(f"ark:{tmp_path / 's.ark'}") as writer:
        writer("a", ex.scores[0][:0])  # zero frames: skipped
    out = tmp_path / "out"
    assert decode(ex, f"ark:cat {tmp_path / 's.ark'} |", out) == EXIT_SKIPPED
    (out / "notes.txt").write_text("mine")
    assert decode(ex, "ark:exit 3 |", out, "--resume") == EXIT_UNUSABLE
    assert (out / "decode.json").is_file() and (out / "notes.txt").read_text() == "mine"
    assert decode(ex, f"ark:cat {tmp_path / 's.ark'} |", out, "--resume") == EXIT_SKIPPED
