"""wfst-gpu: a batched GPU WFST lattice decoder with a CPU (numba) twin.

Importing this package needs only numpy: the decoder (numba) and the GPU modules
load lazily, on first use.
"""

from .budget import MemoryBudget, budget
from .config import DecoderConfig
from .csr import CsrFst
from .errors import CapacityWarning, ConfigError, FstFormatError, GraphError, MemoryBudgetError, ScoresError, WfstError
from .reader import read_fst
from .result import Result
from .symbols import SymbolTable

__all__ = [
    "CapacityWarning",
    "ConfigError",
    "CsrFst",
    "Decoder",
    "DecoderConfig",
    "FstFormatError",
    "GraphError",
    "MemoryBudget",
    "MemoryBudgetError",
    "Result",
    "ScoresError",
    "SymbolTable",
    "WfstError",
    "budget",
    "read_fst",
]
__version__ = "0.1.0"


def __getattr__(name):
    if name == "Decoder":  # imports numba: only when asked for
        from .decoder import Decoder

        return Decoder
    raise AttributeError(f"module 'wfst' has no attribute {name!r}")
