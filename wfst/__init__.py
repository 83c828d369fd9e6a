"""wfst-gpu: a batched GPU WFST lattice decoder with a CPU (numba) twin.

Importing this package needs only numpy: the decoder (numba) and the GPU modules
load lazily, on first use.
"""

from .budget import MemoryBudget, budget
from .config import DecoderConfig
from .csr import CsrFst
from .endpoint import EndpointConfig, EndpointRule
from .errors import (CapacityWarning, ConfigError, DecoderClosedError, FstFormatError, GraphError,
                     MemoryBudgetError, ScoresError, StreamError, WfstError)
from .reader import read_fst
from .result import Result
from .stream_partial import Partial
from .symbols import SymbolTable

__all__ = [
    "CapacityWarning",
    "ConfigError",
    "CsrFst",
    "Decoder",
    "DecoderClosedError",
    "DecoderConfig",
    "EndpointConfig",
    "EndpointRule",
    "FstFormatError",
    "GraphError",
    "MemoryBudget",
    "MemoryBudgetError",
    "Partial",
    "Result",
    "ScoresError",
    "Stream",
    "StreamError",
    "SymbolTable",
    "WfstError",
    "budget",
    "read_fst",
]
__version__ = "0.1.0"


def __getattr__(name):
    if name in ("Decoder", "Stream"):  # import numba: only when asked for
        from . import decoder

        return getattr(decoder, name)
    raise AttributeError(f"module 'wfst' has no attribute {name!r}")


def __dir__():
    """The module's names and the lazy ones (``Decoder``, ``Stream``), for ``dir()``, ``help()`` and completion."""
    return sorted(set(globals()) | set(__all__))
