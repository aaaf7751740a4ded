"""The door for marketers and ops: the ``newsletter`` command.

Commands parse arguments, call a room and format its answer; no logic lives here. One
module per command group; :mod:`cli.output` holds the conventions (``--json``, exit codes,
one-line errors) and :mod:`cli.context` the settings and database wiring.
"""

from __future__ import annotations

from cli import (
    api_tokens,
    archive,
    campaigns,
    comparison,
    db,
    output,
    scheduler,
    snippets,
    subscribers,
    toplevel,
)

app = output.App(help="Run the weekly newsletter.", pretty_exceptions_enable=False)
app.add_typer(db.app, name="db")
app.add_typer(snippets.app, name="snippets")
app.add_typer(subscribers.app, name="subscribers")
# Own modules: campaigns.py is near its 400 lines.
campaigns.app.command("archive")(archive.archive)
campaigns.app.command("compare")(comparison.compare)
app.add_typer(campaigns.app, name="campaigns")
app.add_typer(scheduler.app, name="scheduler")
app.add_typer(api_tokens.app, name="api-tokens")
app.command("serve")(toplevel.serve)
app.command("demo")(toplevel.demo)


def main() -> None:
    """The console script ``newsletter``: exit 0, 1 (expected error) or 2 (wrong usage)."""
    output.run(app)


if __name__ == "__main__":
    main()
