"""Files the worker creates for itself: readable by its owner only.

The database holds every card's text and the agents' output; the webhook
verification token is a secret. Neither should be readable by other users of
the machine, whatever the umask says.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) as owner-only folders; existing ones are left.

    A folder that already exists may be the user's own (their project, their
    home): changing its mode behind their back would be worse than the risk.
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # another worker made it meanwhile
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode is masked by the umask


def ensure_private_file(path: Path) -> None:
    """Create `path` empty with owner-only permissions unless it exists."""
    ensure_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.fchmod(fd, PRIVATE_FILE)
    os.close(fd)


def write_private_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by this user only: a reader sees the old file
    or the new one, never a half-written one, and a symlink at `path` is replaced, not
    followed."""
    ensure_private_dir(path.parent)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)
