"""The AT&T text format: parsing what pynini prints, printing what pynini's
compiler reads back, and a worded FstFormatError with the line number for
each malformed input."""

from __future__ import annotations

import random

import numpy as np
import pynini
import pytest
import pywrapfst

from wfst.csr import CsrFst
from wfst.errors import FstFormatError
from wfst.symbols import SymbolTable
from wfst.text_format import _parse_lines, _parse_numeric, format_text_fst, parse_text_fst

WORDS = ["<eps>", "a", "b", "hello", "wörld", "#0"]


# ----------------------------------------------------------------- helpers
def random_fst(rng: random.Random, acceptor: bool = False) -> pynini.Fst:
    """1..8 states, start anywhere, labels 0..5 (epsilons and epsilon cycles
    included), weights 0, short, long, negative and Infinity, several finals;
    some states unreachable or without arcs."""
    fst = pynini.Fst()
    num_states = rng.randint(1, 8)
    fst.add_states(num_states)
    fst.set_start(rng.randrange(num_states))

    def weight():
        kind = rng.random()
        if kind < 0.3:
            return 0.0
        if kind < 0.5:
            return rng.randint(-3, 5) / 4
        if kind < 0.97:
            return rng.uniform(-10, 10) * 10 ** rng.randint(-3, 3)
        return float("inf")

    for _ in range(rng.randint(0, 3 * num_states)):
        ilabel = rng.choice([0, 0, 1, 2, 3, 4, 5])
        olabel = ilabel if acceptor else rng.choice([0, 1, 2, 3, 4, 5])
        src, dst = rng.randrange(num_states), rng.randrange(num_states)
        fst.add_arc(src, pynini.Arc(ilabel, olabel, weight(), dst))
    if rng.random() < 0.3:  # an explicit epsilon cycle
        a, b = rng.randrange(num_states), rng.randrange(num_states)
        fst.add_arc(a, pynini.Arc(0, 0, weight(), b))
        fst.add_arc(b, pynini.Arc(0, 0 if acceptor else 3, weight(), a))
    for state in rng.sample(range(num_states), rng.randint(0, min(3, num_states))):
        fst.set_final(state, weight())
    return fst


def random_fsts(seed: int, count: int, acceptor: bool = False) -> list[pynini.Fst]:
    rng = random.Random(seed)
    fsts = [random_fst(rng, acceptor) for _ in range(count)]
    single = pynini.Fst()
    single.set_start(single.add_state())
    final_single = single.copy()
    final_single.set_final(0, 1.5)
    return fsts + [single, final_single, pynini.Fst()]


def compile_text(text: str, acceptor: bool = False, isymbols=None, osymbols=None) -> CsrFst:
    """pywrapfst's own compiler (fstcompile), state numbering kept."""
    compiler = pywrapfst.Compiler(
        keep_state_numbering=True, acceptor=acceptor, isymbols=isymbols, osymbols=osymbols)
    compiler.write(text)
    return CsrFst.from_pynini(compiler.compile())


def assert_close(got: CsrFst, expected: CsrFst) -> None:
    """Same states, start, finals and arcs per state; weights to 6 significant
    digits (pynini prints that many)."""
    assert got.num_states == expected.num_states
    assert got.start == expected.start
    assert np.array_equal(got.final == np.inf, expected.final == np.inf)
    finite = got.final != np.inf
    assert np.allclose(got.final[finite], expected.final[finite], rtol=1e-5, atol=1e-30)

    def table(fst):
        # Weight as the last key: rounding is monotonic, so sorted orders agree.
        t = fst.arc_table()
        return t[np.lexsort((t["weight"], t["nextstate"], t["olabel"], t["ilabel"], t["src"]))]

    a, b = table(got), table(expected)
    for name in ("src", "ilabel", "olabel", "nextstate"):
        assert np.array_equal(a[name], b[name]), name
    assert np.array_equal(a["weight"] == np.inf, b["weight"] == np.inf)
    finite = a["weight"] != np.inf
    assert np.allclose(a["weight"][finite], b["weight"][finite], rtol=1e-5, atol=1e-30)


def pynini_words() -> pynini.SymbolTable:
    table = pynini.SymbolTable()
    for key, symbol in enumerate(WORDS):
        table.add_symbol(symbol, key)
    return table


# ------------------------------------------------- parsing pynini's output
FSTS = random_fsts(seed=1234, count=200)


def test_parse_pynini_print():
    for fst in FSTS:
        text = fst.print()
        got = parse_text_fst(text.encode())
        assert_close(got, CsrFst.from_pynini(fst))
        # The same text through pynini's compiler (printed weights, so bit-exact).
        assert got.same_as(compile_text(text))


def test_numeric_fast_path_agrees_with_line_parser():
    # Numeric labels read through a symbol table take the line-by-line parser.
    numbers = SymbolTable.from_pairs((str(i), i) for i in range(6))
    for fst in FSTS:
        text = fst.print().encode()
        assert parse_text_fst(text).same_as(parse_text_fst(text, isymbols=numbers, osymbols=numbers))


def test_fast_path_agrees_on_mutated_numeric_text():
    """Random edits of numeric fields and layout: the vectorized parser either
    declines (None) or gives exactly what the line parser gives, and every
    outcome is a CsrFst or an FstFormatError naming the line."""
    rng = random.Random(99)
    harmless = ["0", "1", "00", "0002", "3", "Infinity", "inf", "Inf", "infinity", "+1.5", "1e3", "-0.25",
                ".5", "5.", "1E-2", "2147483647", "000000000003"]
    harmful = ["-1", "1e", ".", "e", "+2", "1-2", "nan", "-inf", "9999999999", "99999999999", "1.2.3",
               "Infinit", "0 0", ""]
    outcomes = {"accepted": 0, "declined": 0, "error": 0}
    for fst in FSTS[:150]:
        lines = [line.split("\t") for line in fst.print().split("\n")]
        for _ in range(rng.randint(1, 2)):
            line = rng.choice(lines)
            if line != [""]:
                line[rng.randrange(len(line))] = rng.choice(harmless if rng.random() < 0.8 else harmful)
        lines.insert(rng.randrange(len(lines) + 1), [rng.choice(["", " ", "\t \t"])])
        data = "\n".join(rng.choice(["\t", " ", " \t  "]).join(line) for line in lines).encode()
        for acceptor in (False, True):
            fast = _parse_numeric(data, acceptor)
            try:
                slow = _parse_lines(data.decode(), "mutated.txt", None, None, acceptor)
            except FstFormatError:
                assert fast is None
                outcomes["error"] += 1
                slow = None
            if fast is not None:
                outcomes["accepted"] += 1
                assert fast[:2] == slow[:2]  # num_states, start
                for a, b in zip(fast[2:], slow[2:]):
                    assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
            elif slow is not None:
                outcomes["declined"] += 1
            try:
                parse_text_fst(data, "mutated.txt", acceptor=acceptor)
            except FstFormatError as error:
                assert "mutated.txt: line " in str(error)
    assert outcomes["accepted"] > 30 and outcomes["declined"] > 2 and outcomes["error"] > 30, outcomes


def test_symbol_tables(tmp_path):
    words = pynini_words()
    words.write_text(str(tmp_path / "words.txt"))
    ours = SymbolTable.read(tmp_path / "words.txt")
    for fst in FSTS[:100]:
        text = fst.print(isymbols=words, osymbols=words)
        got = parse_text_fst(text.encode("utf-8"), isymbols=ours, osymbols=ours)
        assert_close(got, CsrFst.from_pynini(fst))
        printed = format_text_fst(got, isymbols=ours, osymbols=ours)
        assert parse_text_fst(printed.encode(), isymbols=ours, osymbols=ours).same_as(got)
        assert compile_text(printed, isymbols=words, osymbols=words).same_as(got)


def test_symbol_table_one_side_only():
    ours = SymbolTable.from_pairs((symbol, key) for key, symbol in enumerate(WORDS))
    got = parse_text_fst(b"0 1 hello 7 0.5\n1\n", isymbols=ours)
    assert got.ilabel.tolist() == [3] and got.olabel.tolist() == [7]
    got = parse_text_fst(b"0 1 7 #0\n1\n", osymbols=ours)
    assert got.ilabel.tolist() == [7] and got.olabel.tolist() == [5]


def test_acceptor():
    for fst in random_fsts(seed=7, count=60, acceptor=True):
        text = fst.print(acceptor=True)
        got = parse_text_fst(text.encode(), acceptor=True)
        assert_close(got, CsrFst.from_pynini(fst))
        printed = format_text_fst(got, acceptor=True)
        assert parse_text_fst(printed.encode(), acceptor=True).same_as(got)
        assert compile_text(printed, acceptor=True).same_as(got)
    words = pynini_words()
    ours = SymbolTable.from_pairs((symbol, key) for key, symbol in enumerate(WORDS))
    got = parse_text_fst("0 1 wörld 2\n1 0 <eps>\n1\n".encode(), isymbols=ours, acceptor=True)
    assert got.ilabel.tolist() == got.olabel.tolist() == [4, 0]
    assert format_text_fst(got, isymbols=ours, acceptor=True) == "0\t1\twörld\t2\n1\t0\t<eps>\n1\n"
    assert compile_text("0 1 wörld 2\n1 0 <eps>\n1\n", acceptor=True, isymbols=words).same_as(got)
    with pytest.raises(ValueError, match="not an acceptor: arc 0 has ilabel 1 != olabel 2"):
        format_text_fst(parse_text_fst(b"0 1 1 2\n"), acceptor=True)


# ------------------------------------------------------------ our printer
def test_format_round_trips_through_both_parsers():
    for fst in FSTS:
        ours = CsrFst.from_pynini(fst)
        text = format_text_fst(ours)
        if ours.num_states == 0:
            assert text == ""
            continue
        assert parse_text_fst(text.encode()).same_as(ours)  # bit-exact weights
        assert compile_text(text).same_as(ours)


def test_format_layout_matches_pynini():
    # Weights that pynini prints exactly (6 significant digits); to_pynini keeps
    # our arc order (non-emitting first), so the texts are equal byte for byte.
    rng = random.Random(5)
    for _ in range(50):
        fst = random_fst(rng)
        six_digits = np.vectorize(lambda w: float(f"{w:.6g}"), otypes=[np.float32])
        ours = CsrFst.from_pynini(fst)
        ours = CsrFst.from_arcs(ours.num_states, ours.start, six_digits(ours.final), ours.arc_sources(),
                                ours.nextstate, ours.ilabel, ours.olabel, six_digits(ours.weight))
        assert format_text_fst(ours) == ours.to_pynini().print()


def test_format_details():
    fst = parse_text_fst(b"2 0 0 0 1.25\n2 1 3 4\n2 1 0 1\n0 -0.5\n1\n3 Infinity\n")
    assert format_text_fst(fst) == "2\t0\t0\t0\t1.25\n2\t1\t0\t1\n2\t1\t3\t4\n0\t-0.5\n1\n3\tInfinity\n"
    big = parse_text_fst(b"0 0 1 1 123456789\n0 3e+38\n")
    assert format_text_fst(big) == "0\t0\t1\t1\t1.2345679e+08\n0\t3e+38\n"
    no_start = CsrFst.from_arcs(2, -1, np.zeros(2), [0], [1], [1], [1], [0.0])
    assert format_text_fst(no_start) == ""  # as fstprint
    ours = SymbolTable.from_pairs([("<eps>", 0), ("a", 1)])
    with pytest.raises(KeyError, match="input label 3 is not in"):
        format_text_fst(parse_text_fst(b"0 1 3 1\n"), isymbols=ours, osymbols=ours)


# -------------------------------------------------------- parsing details
def test_conventions():
    # Missing weights are 0; start is the first line's source, even a final line;
    # num_states counts destinations and finals; ids are kept as written.
    text = b"3\n3 5 1 2\n\n  3\t1 0 0 -2.5  \r\n1 4 2 2 Infinity\n7 inf\n"
    fst = parse_text_fst(text)
    assert fst.start == 3 and fst.num_states == 8
    assert fst.final.tolist() == [np.inf, np.inf, np.inf, 0.0] + [np.inf] * 4
    assert fst.arc_table().tolist() == [(1, 2, 2, np.inf, 4), (3, 0, 0, -2.5, 1), (3, 1, 2, 0.0, 5)]
    assert fst.same_as(compile_text(text.decode().replace("\r", "")))


def test_duplicate_final_last_line_wins_as_in_openfst():
    text = "0 1 1 1\n1 2.5\n0 1.5\n1 0.5\n0 Infinity\n"
    fst = parse_text_fst(text.encode())
    assert fst.final.tolist() == [np.inf, 0.5]
    assert fst.same_as(compile_text(text))


@pytest.mark.parametrize("text", [b"", b"\n", b"  \n\t\n"])
def test_empty(text):
    fst = parse_text_fst(text)
    assert (fst.num_states, fst.start, fst.num_arcs) == (0, -1, 0)
    assert fst.same_as(compile_text(text.decode()))


def test_large_but_dense_state_ids_and_labels():
    fst = parse_text_fst(b"0 4194303 2147483647 0\n")
    assert fst.num_states == 2**22 and fst.max_ilabel == 2**31 - 1
    assert parse_text_fst(b"0 1 00000000000007 0\n").ilabel.tolist() == [7]


def test_sparse_state_ids_need_a_quarter_as_many_lines_as_states(monkeypatch):
    """Beyond DENSE_STATES states (lowered here), a file must have at least a
    quarter as many lines as states: 4 lines take 16 states, not 17."""
    import wfst.text_format as text_format

    monkeypatch.setattr(text_format, "DENSE_STATES", 8)
    for text in (b"0 1 1 1\n1 15 2 2\n15\n", b"0 1 a a\n1 15 b b\n15\n"):  # 4 lines (the last one empty)
        table = SymbolTable.from_pairs([("<eps>", 0), ("a", 1), ("b", 2)]) if b"a" in text else None
        assert parse_text_fst(text, isymbols=table, osymbols=table).num_states == 16
        with pytest.raises(FstFormatError, match="state id 16 makes 17 states in a file of 4 lines"):
            parse_text_fst(text.replace(b"15", b"16"), isymbols=table, osymbols=table)


def test_unicode_space_is_part_of_a_symbol():
    ours = SymbolTable.from_pairs([("<eps>", 0), ("a\u00a0b", 1)])
    fst = parse_text_fst("0 1 a\u00a0b <eps>\n1\n".encode(), isymbols=ours, osymbols=ours)
    assert fst.ilabel.tolist() == [1]


# ------------------------------------------------------------------ errors
ERRORS = [
    # (data, keyword arguments, line, words in the message)
    (b"0 1 1 1\n0 1 2\n", {}, 2, "looks like an acceptor ('src dst label [weight]'): pass acceptor=True"),
    (b"0 1 1\n1 2 2 2 0.5\n", {"acceptor": True}, 2, "looks like a transducer: pass acceptor=False"),
    (b"0 1 1 1 0 0\n", {}, 1, "6 fields, too many"),
    (b"0 1 1 1 0 0 0\n", {"acceptor": True}, 1, "7 fields, too many"),
    (b"0 1 1 1\n\n-1 2 1 1\n", {}, 3, "state id '-1' is not a non-negative integer"),
    (b"0 -1 1 1\n", {}, 1, "state id '-1'"),
    (b"0 1 1 1\n1.5\n", {}, 2, "state id '1.5'"),
    (b"0 1 1 1\nx 1 1 1\n", {}, 2, "state id 'x'"),
    (b"0 1 1 1\n+1 0 1 1\n", {}, 2, "state id '+1'"),
    (b"0 1000000000000 1 1\n", {}, 1, "state ids must be < 2**31 - 1"),
    (b"0 2147483647 1 1\n", {}, 1, "state ids must be < 2**31 - 1"),
    (b"0 1 1 1\n1 " + b"9" * 5000 + b" 1 1\n", {}, 2, "state ids must be < 2**31 - 1"),
    (b"0 1 1 1\n2147483646\n", {}, 2, "would allocate about 56.0 GiB"),
    (b"0 1 a 1\n", {}, 1, "input label 'a' is not a non-negative integer; for symbolic labels pass "
                          "isymbols=SymbolTable.read('words.txt')"),
    (b"0 1 1 b\n", {}, 1, "output label 'b' is not a non-negative integer; for symbolic labels pass osymbols="),
    (b"0 1 1 -2\n", {}, 1, "output label '-2'"),
    (b"0 1 2147483648 1\n", {}, 1, "input label 2147483648 is too large"),
    (b"0 1 1 1 nan\n", {}, 1, "weight 'nan' is not allowed"),
    (b"0 1 1 1\n1 -Infinity\n", {}, 2, "weight '-Infinity' is not allowed"),
    (b"0 1 1 1 abc\n", {}, 1, "weight 'abc' is not a number"),
    (b"0 1 1 1 1_0\n", {}, 1, "weight '1_0' is not a number"),
    (b"0 1 1 1 0x10\n", {}, 1, "weight '0x10' is not a number"),
    (b"0 1 1 1\n1\t\xff\n", {}, 2, "not valid UTF-8"),
    (b"0 1 1 1\r2 0 1 1\n", {}, 1, "7 fields, too many"),  # a lone CR is no separator
]


@pytest.mark.parametrize("data, kwargs, line, words", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors(data, kwargs, line, words):
    with pytest.raises(FstFormatError) as caught:
        parse_text_fst(data, "graph.txt", **kwargs)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert message.startswith("graph.txt: ") and f" line {line}: " in message, message
    assert words in message, message
    assert caught.value.path == "graph.txt"


def test_symbol_errors():
    ours = SymbolTable.from_pairs([("<eps>", 0), ("a", 1)])
    with pytest.raises(FstFormatError, match=r"graph.txt: line 2: input symbol 'b' is not in the input symbol"):
        parse_text_fst(b"0 1 a a\n1 2 b a\n", "graph.txt", isymbols=ours, osymbols=ours)
    with pytest.raises(FstFormatError, match=r"line 1: output symbol '1' is not in the output symbol table"):
        parse_text_fst(b"0 1 a 1\n", "graph.txt", isymbols=ours, osymbols=ours)
