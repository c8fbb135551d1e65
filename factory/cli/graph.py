"""`nfactory factories --graph ID`: a factory's Mermaid diagram as text, or an SVG file.

The text is `factory.graph.mermaid`; the picture is drawn by the Mermaid CLI
(`mmdc`, from @mermaid-js/mermaid-cli) when it is on PATH. Without it the
command says in one line how to get one; it never draws a picture of its own.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from enum import StrEnum
from pathlib import Path

from factory.cli.common import out, print_json
from factory.graph import mermaid
from factory.loader import Catalog
from factory.states import Factory
from factory.terminal import shown
from factory.unknown import failures

MMDC_TIMEOUT = 120.0  # seconds: mmdc starts a headless browser
INSTALL_HINT = (
    "--format svg needs the Mermaid CLI `mmdc` on PATH: "
    "npm install -g @mermaid-js/mermaid-cli (or paste the output of "
    "`nfactory factories --graph ID` into https://mermaid.live)"
)


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    svg = "svg"


def find_factory(catalog: Catalog, factory_id: str) -> Factory:
    """The loaded factory `factory_id`; a ValueError naming the known ids otherwise."""
    if factory_id in catalog.factories:
        return catalog.factories[factory_id]
    known = ", ".join(sorted(catalog.factories)) or "none loaded"
    also = f" ({failures(catalog.unloaded)})" if catalog.unloaded else ""
    raise ValueError(f"unknown factory {factory_id!r}; known factories: {known}{also}")


def show_graph(factory: Factory, fmt: GraphFormat, output: Path | None, as_json: bool) -> None:
    """The diagram on stdout (plain, for pipes; `as_json`: with the factory's id), or
    written to `output`; an SVG is always a file (`ID.svg` by default)."""
    if fmt is GraphFormat.svg:
        written = write_svg(factory, output or default_svg_path(factory.id))
        out.print(f"wrote {shown(str(written))}", highlight=False)
    elif output is not None:
        try:
            output.write_text(mermaid(factory) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot write {output}: {exc.strerror or exc}") from None
        out.print(f"wrote {shown(str(output))}", highlight=False)
    elif as_json:
        print_json({"factory": factory.id, "mermaid": mermaid(factory)})
    else:
        sys.stdout.write(mermaid(factory) + "\n")


def default_svg_path(factory_id: str) -> Path:
    """`<id>.svg` in the working directory, the id kept to characters safe in a file name."""
    return Path(re.sub(r"[^A-Za-z0-9_.-]+", "_", factory_id).strip(".") or "factory").with_suffix(
        ".svg"
    )


def write_svg(factory: Factory, output: Path, mmdc: str | None = None) -> Path:
    """Draw the factory's diagram into `output` with the Mermaid CLI; returns `output`."""
    mmdc = mmdc or shutil.which("mmdc")
    if mmdc is None:
        raise ValueError(INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="nfactory-graph-") as folder:
        source = Path(folder) / "factory.mmd"
        source.write_text(mermaid(factory) + "\n", encoding="utf-8")
        try:
            done = subprocess.run(
                [mmdc, "--quiet", "-i", str(source), "-o", str(output)],
                capture_output=True,
                text=True,
                timeout=MMDC_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ValueError(f"mmdc did not finish within {MMDC_TIMEOUT:.0f} s") from None
        except OSError as exc:
            raise ValueError(f"could not run {mmdc}: {exc}") from None
    if done.returncode != 0 or not output.is_file():
        said = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = said[-1].strip() if said else f"exit status {done.returncode}"
        raise ValueError(f"mmdc could not draw factory {factory.id!r}: {reason}")
    return output
