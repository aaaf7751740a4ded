"""The door for marketers and ops: the ``newsletter`` command.

Commands parse arguments, call a room and format its answer; no logic lives here. One
module per command group; :mod:`cli.output` holds the conventions (``--json``, exit codes,
one-line errors) and :mod:`cli.context` the settings and database wiring.
"""

from __future__ import annotations

from cli import (
    api_tokens,
    archive,
    bounces,
    campaign_edits,  # noqa: F401 (registers edit, duplicate, reassemble on campaigns)
    campaigns,
    comparison,
    db,
    output,
    scheduler,
    snippets,
    subject_tests,
    subscribers,
    toplevel,
    users,
    worker,
)
from cli import webhooks as outgoing_webhooks  # issue 16 point 4

app = output.App(help="Run the weekly newsletter.", pretty_exceptions_enable=False)
app.add_typer(db.app, name="db")
app.add_typer(snippets.app, name="snippets")
app.add_typer(subscribers.app, name="subscribers")
# Own modules: campaigns.py is near its 400 lines.
campaigns.app.command("archive")(archive.archive)
campaigns.app.command("compare")(comparison.compare)
app.add_typer(campaigns.app, name="campaigns")
campaigns.app.command("subject-test")(subject_tests.subject_test)  # issue 16
campaigns.app.command("resend")(subject_tests.resend)  # issue 16
app.add_typer(scheduler.app, name="scheduler")
app.add_typer(api_tokens.app, name="api-tokens")
app.add_typer(users.app, name="users")
app.add_typer(outgoing_webhooks.app, name="webhooks")
app.add_typer(bounces.app, name="bounces")
app.command("serve")(toplevel.serve)
app.command("demo")(toplevel.demo)
app.command("worker")(worker.worker)  # issue 17: queue mode's senders


def main() -> None:
    """The console script ``newsletter``: exit 0, 1 (expected error) or 2 (wrong usage)."""
    output.run(app)


if __name__ == "__main__":
    main()
