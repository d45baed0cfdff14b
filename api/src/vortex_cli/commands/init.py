"""`vortex init [DIR]`: write a starter function and its VortexFunction manifest.

The files come from `templates.py`. Nothing is overwritten: if any of them exists, none is
written and the command is a usage error.
"""

from __future__ import annotations

from pathlib import Path

import click

from vortex_cli.commands.common import output_command
from vortex_cli.inputs import check_name, name_from
from vortex_cli.output import Output
from vortex_cli.templates import TEMPLATES, starter_files


@click.command()
@click.argument(
    "directory",
    metavar="[DIR]",
    default=".",
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--template",
    "-t",
    type=click.Choice(sorted(TEMPLATES)),
    default="hello",
    show_default=True,
    help="hello: a function body; handler: a module with a default export",
)
@click.option("--name", help="the function's name (default: made from DIR's name)")
@output_command
def init(out: Output, directory: Path, template: str, name: str | None) -> None:
    """Write a starter function and a VortexFunction manifest into DIR."""
    name = check_name(name) if name else name_from(directory.resolve().name)
    files = {directory / file: content for file, content in starter_files(template, name).items()}
    existing = [str(path) for path in files if path.exists()]
    if existing:
        raise click.UsageError(f"not overwriting {', '.join(existing)}")
    directory.mkdir(parents=True, exist_ok=True)
    for path, content in files.items():
        path.write_text(content, encoding="utf-8")
    written = [str(path) for path in files]
    if out.json:
        out.document({"name": name, "template": template, "files": written})
        return
    for path_text in written:
        out.line(f"wrote {path_text}")
    function_file = next(iter(files))
    out.note(f"next: vortex deploy {function_file} --name {name} && vortex invoke {name}")
