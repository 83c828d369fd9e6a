"""lattice.determinize (numba) gives exactly what the plain-Python subset
construction of tests/determinize_reference.py gives: every array equal, on
random lattices (exact ties included: quantized costs) and on the decoder's
lattices of the example at a wide lattice beam."""

import dataclasses

import numpy as np
import pytest

import wfst
from lattice import Lattice
from lattice.determinize import determinize
from tests.determinize_reference import determinize as reference
from tests.lattice_paths import random_lattice
from wfst.example import load_example


def assert_same_compact(ours, expected):
    for field in dataclasses.fields(expected):
        got, want = getattr(ours, field.name), getattr(expected, field.name)
        assert got.dtype == want.dtype, field.name
        np.testing.assert_array_equal(got, want, err_msg=field.name)


@pytest.mark.parametrize("seed", range(200))
def test_random_lattices_determinize_as_the_reference_does(seed):
    rng = np.random.default_rng(seed)
    lattice = random_lattice(rng, frames=int(rng.integers(1, 6)), width=int(rng.integers(1, 4)),
                             quantized=seed % 2 == 0)
    assert_same_compact(determinize(lattice), reference(lattice))


def test_decoder_lattices_determinize_as_the_reference_does():
    ex = load_example()
    config = wfst.DecoderConfig(acoustic_scale=0.5, lattice_beam=10.0)
    for result in wfst.Decoder(ex.fst, config, device="cpu").decode(ex.scores[:8]):
        assert_same_compact(determinize(result.lattice), reference(result.lattice))


def test_empty_lattice():
    assert_same_compact(determinize(Lattice.empty()), reference(Lattice.empty()))
