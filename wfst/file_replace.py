"""Writing a file so that it holds its old content or its new, never part of
one: the new content goes to a temporary file beside it, which is synced and
renamed into place."""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager


@contextmanager
def replaced(path: str | os.PathLike, mode: str = "wb", **open_args):
    """A file (``open(..., mode, **open_args)``) for ``path``'s new content,
    which replaces ``path`` when the block ends. If the block raises, ``path``
    keeps its old content and no temporary file is left. Readers see the old
    file or the new one, whole; a memory map of the old file (a graph read from
    it) stays valid. A symbolic link stays one: its target is replaced; a file
    replaced keeps its permission bits (not its hard links). The temporary
    file is hidden and is one per process and thread, so concurrent
    writers never share it."""
    path = os.path.realpath(path)
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        with open(temporary, mode, **open_args) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        if os.path.exists(path):
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
