"""``python -m handlers.contracts [--check] [--out DIR]``: regenerate the contract documents
(default: docs/contracts of this source tree), or with ``--check`` only report stale ones
(exit status 1)."""

from __future__ import annotations

from pathlib import Path

import click

from handlers.contracts.render import DEFAULT_DIR, stale_documents, write_documents


@click.command("contracts")
@click.option(
    "--out",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
    help="Directory of the documents.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a document is stale.")
def main(directory: Path, check: bool) -> None:
    """Generate the AsyncAPI and OpenAPI documents from the code."""
    if check:
        stale = stale_documents(directory)
        for name in stale:
            click.echo(f"stale    {directory / name}", err=True)
        if stale:
            raise SystemExit(1)
        click.echo("contracts are up to date")
        return
    written = write_documents(directory)
    for name in written:
        click.echo(f"written  {directory / name}")
    if not written:
        click.echo("contracts are up to date")


if __name__ == "__main__":
    main()
