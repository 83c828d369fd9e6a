"""lattice.determinize (numba) gives exactly what the plain-Python subset
construction of tests/determinize_reference.py gives: every array equal, on
random lattices (exact ties included: quantized costs) and on the decoder's
lattices of the example at a wide lattice beam."""

import numpy as np
import pytest

import wfst
from lattice import Lattice
from lattice.determinize import determinize
from tests.determinize_reference import determinize as reference
from tests.lattice_paths import assert_same_arrays, random_lattice
from wfst.example import load_example


@pytest.mark.parametrize("seed", range(200))
def test_random_lattices_determinize_as_the_reference_does(seed):
    rng = np.random.default_rng(seed)
    lattice = random_lattice(rng, frames=int(rng.integers(1, 6)), width=int(rng.integers(1, 4)),
                             quantized=seed % 2 == 0)
    assert_same_arrays(determinize(lattice), reference(lattice))


def test_decoder_lattices_determinize_as_the_reference_does():
    ex = load_example()
    config = wfst.DecoderConfig(acoustic_scale=0.5, lattice_beam=10.0)
    for result in wfst.Decoder(ex.fst, config, device="cpu").decode(ex.scores[:8]):
        assert_same_arrays(determinize(result.lattice), reference(result.lattice))


def test_empty_lattice():
    assert_same_arrays(determinize(Lattice.empty()), reference(Lattice.empty()))
