"""wfst-gpu: a batched GPU WFST lattice decoder with a CPU (numba) twin.

Importing this package needs only numpy: GPU modules load lazily, on first use.
"""

from .budget import MemoryBudget, budget
from .config import DecoderConfig
from .csr import CsrFst
from .errors import ConfigError, FstFormatError, MemoryBudgetError, WfstError
from .reader import read_fst
from .symbols import SymbolTable

__all__ = [
    "ConfigError",
    "CsrFst",
    "DecoderConfig",
    "FstFormatError",
    "MemoryBudget",
    "MemoryBudgetError",
    "SymbolTable",
    "WfstError",
    "budget",
    "read_fst",
]
__version__ = "0.1.0"
