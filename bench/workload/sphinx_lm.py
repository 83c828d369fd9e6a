"""Read a CMU Sphinx binary trie language model (``*.lm.bin``) into a
:class:`wfst.arpa.NgramModel`, with numpy.

pocketsphinx ships its US English trigram model only in this format, and its
own ARPA writer crashes on it (the header counts 6 bigrams that the trie never
stored). This reader walks the trie the way pocketsphinx's lookups do, so the
model it returns gives the probabilities ``pocketsphinx.NGramModel.prob``
gives, in log10 instead of pocketsphinx's integer log base 1.0001.

File layout (little-endian; sphinxbase ``ngram_model_trie.c``, ``lm_trie.c``,
``lm_trie_quant.c``, ``bitarr.c``), for an order-``N`` model with ``V`` words:

- ``"Trie Language Model"`` (19 bytes), the order (uint8), ``N`` uint32 counts;
- an int32 (formerly the quantization type), then the quantization tables,
  float32 log values with 65,536 entries each: for each middle order
  ``n = 2 .. N-1`` a probability table and a back-off table, then the top
  order's probability table;
- ``V + 1`` unigram records ``(prob float32, backoff float32, next uint32)``;
  ``next`` of word ``w`` .. ``next`` of ``w + 1`` is its range of bigram entries;
- the bit-packed n-gram entries: for each middle order, ``count + 1`` entries
  of ``word | backoff index (16) | prob index (16) | next``, then the top order's
  ``count + 1`` entries of ``word | prob index (16)``. ``word`` has as many bits
  as ``V`` needs, ``next`` as many as the next order's count needs; each array
  is padded to whole bytes plus 8. Fields are read as a little-endian integer
  starting at their bit offset;
- an int32 byte count and the words, each ending in a NUL byte.

The trie is reversed, as in KenLM: the root is the *last* word of an n-gram,
and each level down adds the word before. Counts in the header are those
pocketsphinx allocated; the entries actually stored (reachable from the
unigrams) can be fewer, and only those are returned.

Units: the file holds log base 1.0001 (pocketsphinx's ``LogMath`` default);
values are multiplied by ``log10(1.0001)`` in float64.
"""

from __future__ import annotations

import os

import numpy as np

from wfst.arpa import NgramModel, NgramOrder
from wfst.errors import WfstError

__all__ = ["LOG_BASE", "SphinxLmFormatError", "read_sphinx_lm"]

LOG_BASE = 1.0001
"""Base of the logarithms stored in the file."""

_MAGIC = b"Trie Language Model"
_QUANT_BITS = 16
_QUANT_TABLE = 1 << _QUANT_BITS
_UNIGRAM = np.dtype([("prob", "<f4"), ("backoff", "<f4"), ("next", "<u4")])


class SphinxLmFormatError(WfstError, ValueError):
    """A file that is not a well-formed Sphinx binary trie LM; ``path`` and
    ``offset`` (bytes from the start) say where, when known."""

    def __init__(self, message: str, path: str | os.PathLike, offset: int | None = None):
        self.reason = message
        self.path = os.fspath(path)
        self.offset = offset
        where = self.path if offset is None else f"{self.path}: byte {offset}"
        super().__init__(f"{where}: {message}")


def _required_bits(max_value: int) -> int:
    """Bits to store ``0 .. max_value`` (sphinxbase ``bitarr_required_bits``)."""
    return int(max_value).bit_length()


def _read_bits(memory: np.ndarray, bit_offsets: np.ndarray, width: int) -> np.ndarray:
    """The ``width``-bit (<= 32) little-endian fields at ``bit_offsets`` (int64)
    of the byte array ``memory``, as int64."""
    start = bit_offsets >> 3
    value = np.zeros(len(bit_offsets), dtype=np.int64)
    for k in range((width + 7 + 7) // 8):
        value |= memory[start + k].astype(np.int64) << (8 * k)
    return (value >> (bit_offsets & 7)) & ((1 << width) - 1)


class _Reader:
    """Sequential reads from the file's bytes, with bounds checks."""

    def __init__(self, data: bytes, path: str):
        self.data = data
        self.path = path
        self.offset = 0

    def take(self, size: int, what: str) -> memoryview:
        if size < 0 or self.offset + size > len(self.data):
            raise SphinxLmFormatError(
                f"file ends inside {what} (needs {size} bytes, {len(self.data) - self.offset} left)",
                self.path, self.offset)
        view = memoryview(self.data)[self.offset:self.offset + size]
        self.offset += size
        return view

    def array(self, dtype, count: int, what: str) -> np.ndarray:
        dtype = np.dtype(dtype)
        return np.frombuffer(self.take(dtype.itemsize * count, what), dtype=dtype)

    def fail(self, message: str, offset: int | None = None):
        raise SphinxLmFormatError(message, self.path, self.offset if offset is None else offset)


def read_sphinx_lm(path: str | os.PathLike) -> NgramModel:
    """Read a Sphinx binary trie LM into an :class:`NgramModel` (log10 units).

    Word ids are the file's word ids. Every n-gram stored in the trie comes
    back, with its probability and (below the top order) back-off weight as
    dequantized by pocketsphinx, converted to log10. Raises
    :class:`SphinxLmFormatError` (a ``ValueError``) for a file that is not
    such a model, is truncated, or whose trie pointers are inconsistent.
    Takes about 1.5 s for pocketsphinx's 3.8 M n-gram US English model.
    """
    path = os.fspath(path)
    with open(path, "rb") as stream:
        reader = _Reader(stream.read(), path)
    if bytes(reader.take(len(_MAGIC), "the header")) != _MAGIC:
        reader.fail("not a Sphinx binary trie language model (no 'Trie Language Model' header)", 0)
    order = int(reader.array("u1", 1, "the header")[0])
    if order < 2:
        reader.fail(f"order {order}: only models of order 2 or more are supported")
    counts = reader.array("<u4", order, "the n-gram counts").astype(np.int64)
    vocab_size = int(counts[0])
    reader.array("<i4", 1, "the quantization header")
    middle_tables = reader.array("<f4", 2 * (order - 2) * _QUANT_TABLE, "the quantization tables")
    middle_tables = middle_tables.reshape(order - 2, 2, _QUANT_TABLE)  # [n-2][prob, backoff]
    top_table = reader.array("<f4", _QUANT_TABLE, "the quantization tables")
    unigrams = reader.array(_UNIGRAM, vocab_size + 1, "the unigrams")

    word_bits = _required_bits(vocab_size)
    to_log10 = np.log10(LOG_BASE)
    ids = np.arange(vocab_size, dtype=np.int64)[:, None]
    orders = [NgramOrder(ids, unigrams["prob"][:-1] * to_log10,
                         unigrams["backoff"][:-1] * to_log10)]
    # ``ids``: the stored n-grams of the last order read, earliest word first,
    # in trie order; ``ranges[i] .. ranges[i + 1]``: the entries of the next
    # order below n-gram ``i`` (each adds the word before it).
    ranges = unigrams["next"].astype(np.int64)
    for n in range(2, order + 1):
        top = n == order
        next_bits = 0 if top else _required_bits(counts[n])
        entry_bits = word_bits + (_QUANT_BITS if top else 2 * _QUANT_BITS + next_bits)
        size = ((1 + counts[n - 1]) * entry_bits + 7) // 8 + 8
        start = reader.offset
        memory = np.frombuffer(reader.take(int(size), f"the {n}-gram entries"), dtype=np.uint8)
        stored = ranges[-1]
        if ranges[0] != 0 or np.any(np.diff(ranges) < 0) or stored > counts[n - 1]:
            reader.fail(f"the pointers to the {n}-grams are not increasing from 0 up to at most "
                        f"{counts[n - 1]}", start)
        entries = np.arange(stored + (0 if top else 1), dtype=np.int64) * entry_bits
        parent = np.repeat(np.arange(len(ranges) - 1), np.diff(ranges))
        word = _read_bits(memory, entries[:stored], word_bits)
        if stored and word.max() >= vocab_size:
            reader.fail(f"a {n}-gram entry names word {word.max()}, beyond the {vocab_size} words", start)
        ids = np.concatenate([word[:, None], ids[parent]], axis=1)
        if top:
            logprob = top_table[_read_bits(memory, entries + word_bits, _QUANT_BITS)]
            backoff = np.zeros(stored)
        else:
            tables = middle_tables[n - 2]
            backoff = tables[1][_read_bits(memory, entries[:stored] + word_bits, _QUANT_BITS)]
            logprob = tables[0][_read_bits(memory, entries[:stored] + word_bits + _QUANT_BITS, _QUANT_BITS)]
            ranges = _read_bits(memory, entries + word_bits + 2 * _QUANT_BITS, next_bits)
        rows = np.lexsort(ids.T[::-1])
        orders.append(NgramOrder(ids[rows], logprob[rows] * to_log10, backoff[rows] * to_log10))
    if reader.offset + 4 > len(reader.data):
        reader.fail("file ends before the word strings")
    vocab = _read_words(reader, vocab_size)
    return NgramModel(vocab, tuple(orders))


def _read_words(reader: _Reader, vocab_size: int) -> tuple[str, ...]:
    size = int(reader.array("<i4", 1, "the word strings")[0])
    start = reader.offset
    text = bytes(reader.take(size, "the word strings"))
    words = text.split(b"\0")
    if words[-1] != b"" or len(words) - 1 != vocab_size:
        reader.fail(f"expected {vocab_size} NUL-terminated words, found {len(words) - 1}", start)
    try:
        return tuple(word.decode("utf-8") for word in words[:-1])
    except UnicodeDecodeError:
        reader.fail("the word strings are not UTF-8", start)
