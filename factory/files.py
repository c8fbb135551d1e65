"""Files the worker creates for itself: readable by its owner only.

The database holds every card's text and the agents' output; the webhook
verification token is a secret. Neither should be readable by other users of
the machine, whatever the umask says.
"""

from __future__ import annotations

import os
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
