"""Text symbol tables (words.txt): reading what pynini/Kaldi write, lookups,
round trips, and a worded FstFormatError for each malformed input."""

from __future__ import annotations

import pynini
import pytest

from wfst.errors import FstFormatError
from wfst.symbols import SymbolTable

WORDS = [("<eps>", 0), ("a", 1), ("hello", 2), ("wörld", 5), ("<unk>", 7), ("#0", 8), ("#1", 9)]


@pytest.fixture()
def pynini_words(tmp_path):
    table = pynini.SymbolTable()
    for symbol, key in WORDS:
        table.add_symbol(symbol, key)
    path = tmp_path / "words.txt"
    table.write_text(str(path))
    return path


def test_reads_pynini_words_txt(pynini_words):
    table = SymbolTable.read(pynini_words)
    assert len(table) == len(WORDS)
    for symbol, key in WORDS:
        assert table.find(symbol) == key
        assert table.find(key) == symbol
        assert table[symbol] == key and table[key] == symbol
        assert symbol in table and key in table
    assert list(table) == [(key, symbol) for symbol, key in WORDS]
    assert table.max_id == 9
    assert dict(table.symbol_to_id) == dict(WORDS)
    assert list(table.id_to_symbol) == [key for _, key in WORDS]
    assert table.path == str(pynini_words)


def test_absent_keys():
    table = SymbolTable.from_pairs(WORDS)
    assert "b" not in table and 3 not in table and 1.5 not in table and None not in table
    with pytest.raises(KeyError, match="symbol 'b' is not in the symbol table"):
        table.find("b")
    with pytest.raises(KeyError, match="id 3 is not in"):
        table[3]
    with pytest.raises(TypeError):
        table.find(1.5)


def test_write_read_round_trip_and_pynini_reads_ours(tmp_path):
    # Ids out of order and with gaps: iteration and write are in id order.
    table = SymbolTable.from_pairs([("z", 10), ("<eps>", 0), ("x", 3), ("#0", 4)])
    assert list(table) == [(0, "<eps>"), (3, "x"), (4, "#0"), (10, "z")]
    path = tmp_path / "out.txt"
    table.write(path)
    assert path.read_text() == "<eps>\t0\nx\t3\n#0\t4\nz\t10\n"
    again = SymbolTable.read(path)
    assert list(again) == list(table) and again.max_id == 10
    assert again == table and hash(again) == hash(table) and again.path != table.path  # same mapping: equal
    assert again != SymbolTable.from_pairs([("z", 10), ("<eps>", 0), ("x", 3), ("#0", 5)]) and again != list(table)
    theirs = pynini.SymbolTable.read_text(str(path))
    assert [(key, symbol) for key, symbol in theirs] == list(table)


def test_kaldi_layout_spaces_tabs_blank_lines_crlf(tmp_path):
    path = tmp_path / "words.txt"
    path.write_bytes(b"<eps> 0\r\n\r\n  a\t\t1  \n\nb\xc2\xa0c 2\n\n")
    table = SymbolTable.read(path)
    # A non-breaking space is part of a symbol (OpenFst splits on spaces and tabs only).
    assert list(table) == [(0, "<eps>"), (1, "a"), (2, "b\u00a0c")]


def test_a_byte_order_mark_is_dropped_from_tables_and_text_fsts(tmp_path):
    from wfst import read_fst

    (tmp_path / "words.txt").write_bytes(b"\xef\xbb\xbf<eps> 0\na 1\n")
    table = SymbolTable.read(tmp_path / "words.txt")
    assert table["<eps>"] == 0 and list(table) == [(0, "<eps>"), (1, "a")]
    (tmp_path / "g.txt").write_bytes(b"\xef\xbb\xbf0 1 a a 0.5\n1\n")
    fst = read_fst(tmp_path / "g.txt", isymbols=tmp_path / "words.txt", osymbols=str(tmp_path / "words.txt"))
    assert fst.num_states == 2 and fst.ilabel.tolist() == [1]  # (symbol tables may be given by path)


def test_long_ids_with_leading_zeros_keep_their_value(tmp_path):
    """Leading zeros do not make an id large (OpenFst reads the number): 24
    digits that spell 7 are id 7; 20 significant digits are too large."""
    path = tmp_path / "words.txt"
    path.write_text("<eps> 0\na " + "0" * 23 + "7\n")
    assert SymbolTable.read(path)["a"] == 7
    path.write_text("<eps> 0\na 1" + "0" * 19 + "\n")
    with pytest.raises(FstFormatError, match="above 2147483647"):
        SymbolTable.read(path)


def test_empty_table(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n\n")
    table = SymbolTable.read(path)
    assert len(table) == 0 and list(table) == [] and table.max_id == -1
    with pytest.raises(KeyError, match="empty"):
        table.find(0)


@pytest.mark.parametrize(
    "content, line, words",
    [
        ("<eps> 0\na\n", 2, "expected 2 fields"),
        ("<eps> 0\n\na 1 2\n", 3, "got 3"),
        ("<eps> 0\na x\n", 2, "not a non-negative integer"),
        ("<eps> 0\na -1\n", 2, "not a non-negative integer"),
        ("<eps> 0\na 1.0\n", 2, "not a non-negative integer"),
        ("<eps> 0\na +1\n", 2, "not a non-negative integer"),
        ("<eps> 0\na 1\nb 2\na 3\n", 4, "symbol 'a' appears twice"),
        ("<eps> 0\na 1\nb 1\n", 3, "id 1 is used twice"),
        ("<eps> 0\na 2147483648\n", 2, "above 2147483647"),
        ("<eps> 0\na 1" + "0" * 5000 + "\n", 2, "above"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_malformed_lines(tmp_path, content, line, words):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(FstFormatError) as caught:
        SymbolTable.read(path)
    assert isinstance(caught.value, ValueError)
    assert f"line {line}:" in str(caught.value) and words in str(caught.value)
    assert caught.value.path == str(path) and str(path) in str(caught.value)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"<eps> 0\nw\xf6rld 1\n")
    with pytest.raises(FstFormatError, match="byte 9: line 2: not valid UTF-8") as caught:
        SymbolTable.read(path)
    assert caught.value.offset == 9 and str(path) in str(caught.value)


@pytest.mark.parametrize(
    "pairs, words",
    [
        ([("a", 0), ("b", -1)], "pair 2: id -1"),
        ([("a", 0), ("b", 1.0)], "pair 2: id 1.0"),
        ([("a", True)], "pair 1: id True"),
        ([("a b", 0)], "pair 1: symbol 'a b'"),
        ([("", 0)], "pair 1: symbol ''"),
        ([("a\n", 0)], "pair 1: symbol"),
        ([("a", 0), ("a", 1)], "pair 2: symbol 'a' appears twice"),
        ([("a", 0), ("b", 0)], "pair 2: id 0 is used twice"),
    ],
)
def test_from_pairs_errors(pairs, words):
    with pytest.raises(FstFormatError, match=words):
        SymbolTable.from_pairs(pairs)
