"""Warnings attributed to the user's code: :func:`warn_user` points a warning at
the first caller outside the library (``wfst/`` and ``lattice/``), however deep
in the library it is issued, so that ``python -W error`` and warning filters by
module name see the call that caused it."""

from __future__ import annotations

import os
import sys
import warnings

_LIBRARY = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), name) + os.sep
                 for name in ("wfst", "lattice"))


def warn_user(message: Warning | str) -> None:
    """``warnings.warn(message)`` at the first frame outside the library."""
    frame, level = sys._getframe(1), 2  # stacklevel 2: warn_user's caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_LIBRARY):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, stacklevel=level)
