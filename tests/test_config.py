import pytest

from wfst import ConfigError, DecoderConfig, WfstError


def test_defaults_and_derived_capacities():
    config = DecoderConfig()
    assert (config.beam, config.max_active, config.min_active, config.lattice_beam) == (15.0, 10000, 200, 8.0)
    assert config.acoustic_scale == 1.0 and config.use_final_probs is True
    assert config.token_capacity == 40000 and config.arc_capacity == 120000
    given = DecoderConfig(token_queue_capacity=50000, arc_queue_capacity=60000)
    assert (given.token_capacity, given.arc_capacity) == (50000, 60000)


@pytest.mark.parametrize("field, value", [
    ("beam", 0), ("beam", 1e-6), ("beam", 0.09), ("beam", float("nan")), ("beam", float("inf")), ("beam", "15"), ("lattice_beam", -1.0),
    ("lattice_beam", 1e39), ("beam", 3.5e38), ("acoustic_scale", 1e300),
    ("acoustic_scale", 0.0), ("max_active", 0), ("max_active", 2.5), ("max_active", True),
    ("min_active", -1), ("min_active", 20000), ("prune_interval", 0), ("use_final_probs", 1),
    ("token_queue_capacity", 10), ("arc_queue_capacity", 100), ("token_queue_capacity", 0),
    ("arc_queue_capacity", 0), ("beam", True),
    ("acoustic_scale", 1e-46), ("acoustic_scale", 1e-300),  # 0 in float32: the scores would count for nothing
    ("max_active", 10**20), ("prune_interval", 10**20), ("token_queue_capacity", 2**31),  # beyond int32: an untyped error
])
def test_bad_values_raise_config_error_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field) as caught:
        DecoderConfig(**{field: value})
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, WfstError)


def test_numpy_scalars_are_taken_as_the_numbers_they_hold():
    import numpy as np

    config = DecoderConfig(beam=np.float32(5.5), max_active=np.int64(50), min_active=np.int32(3),
                           use_final_probs=np.bool_(False))
    assert config == DecoderConfig(beam=5.5, max_active=50, min_active=3, use_final_probs=False)
    assert type(config.max_active) is int and type(config.beam) is float and config.use_final_probs is False
    assert DecoderConfig(beam=0.1).beam == 0.1  # the narrowest beam allowed


def test_frozen():
    with pytest.raises(AttributeError):
        DecoderConfig().beam = 3.0


def test_the_bounds_themselves_are_allowed():
    DecoderConfig(max_active=5, min_active=5)
    DecoderConfig(max_active=5, min_active=0, token_queue_capacity=5)
    DecoderConfig(max_active=5, min_active=0, token_queue_capacity=5, arc_queue_capacity=5)
    DecoderConfig(lattice_beam=0.0)  # the lattice keeps the best paths only


def test_the_arc_queue_holds_at_least_a_token_queue():
    """arc_queue_capacity is bounded by the token queue capacity in effect, not
    by max_active: 7 candidate slots for 10 tokens are refused."""
    with pytest.raises(ConfigError, match="arc_queue_capacity"):
        DecoderConfig(max_active=5, min_active=0, token_queue_capacity=10, arc_queue_capacity=7)
