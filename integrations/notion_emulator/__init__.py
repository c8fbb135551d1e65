"""A local Notion API server (Notion-Version 2025-09-03) for offline use and tests.

    from integrations.notion_emulator import EmulatorServer
    with EmulatorServer() as emu:
        notion = notion_client.Client(auth=emu.token, base_url=emu.base_url)

See README.md in this directory for what it serves and where it differs from Notion.
"""

from .app import create_app
from .server import EmulatorServer, serve

__all__ = ["EmulatorServer", "create_app", "serve"]
