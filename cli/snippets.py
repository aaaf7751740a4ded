"""``newsletter snippets``: the snippet library (import, list, add, edit, retire)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer

from cli import output, params
from cli.context import actor, session_for, settings

app = output.App(help="The snippet library.")


@app.command("import")
def import_(
    source: str = typer.Argument(
        ...,
        metavar="PATH_OR_URL",
        parser=params.path_or_url,
        help="A Markdown file or folder, or an RSS/Atom file or URL to import.",
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Import snippets; re-importing updates them, bad entries are reported and skipped."""
    from campaigns.content.snippet_import import import_snippets

    cfg = settings()
    with session_for(cfg) as session:
        report = import_snippets(session, settings=cfg, source=source)
    if as_json:
        output.print_json(report.to_dict())
    else:
        output.say(
            f"{report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.problems)} skipped"
        )
        for problem in report.problems:
            output.say(f"skipped: {problem}")
    # Like subscribers import: the good entries are kept, bad ones still fail the run.
    if report.problems:
        bad = output.plural(len(report.problems), "entry", "entries")
        output.fail(f"{bad} of {source} skipped (listed above); the rest were imported")


def _used_in(campaigns: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"#{c['id']} {c['week'] or ''} {c['status']}{' (resent)' if c['resent'] else ''}"
        for c in campaigns
    )


@app.command("list")
def list_(as_json: bool = output.json_option()) -> None:
    """Every snippet, freshest first, whether it is pinned, and the campaigns that used it."""
    from campaigns.content.snippets import list_snippets

    with session_for(settings()) as session:
        listings = [item.to_dict() for item in list_snippets(session)]
    if as_json:
        output.print_json(listings)
        return
    if not listings:
        output.say("no snippets")
        return
    output.print_table(
        ("id", "published", "category", "pinned", "title", "used in"),
        (
            (
                str(item["id"]),
                item["published_at"][:10],
                item["category"],
                "pinned" if item["pinned"] else "",
                item["title"],
                _used_in(item["campaigns"]) or "-",
            )
            for item in listings
        ),
    )


@app.command("add")
def add(
    title: str = typer.Option(..., "--title"),
    summary: str = typer.Option(..., "--summary", help="Plain text; trimmed to the limit."),
    url: str = typer.Option(..., "--url", help="The article's canonical http(s) URL."),
    image_url: str | None = typer.Option(None, "--image-url"),
    image_alt: str | None = typer.Option(None, "--image-alt"),
    category: str = typer.Option("general", "--category"),
    tags: list[str] = typer.Option([], "--tag", help="Repeat for several tags."),
    author: str | None = typer.Option(None, "--author"),
    published: datetime | None = typer.Option(
        None,
        "--published",
        metavar="ISO_DATE",
        parser=params.parse_when,
        help="An ISO date or date-time (UTC unless it has an offset); default now.",
    ),
    pinned: bool = typer.Option(False, "--pinned", help="Feature it first in the next issue."),
    as_json: bool = output.json_option(),
) -> None:
    """Add one snippet by hand."""
    from campaigns.content.snippets import add_snippet, parse_published
    from campaigns.models import SnippetPublic

    cfg = settings()
    data = {
        "title": title,
        "summary": summary,
        "url": url,
        "image_url": image_url,
        "image_alt": image_alt,
        "category": category,
        "tags": tags,
        "author": author,
        "published_at": parse_published(None if published is None else published.isoformat()),
        "source": "manual",
        "pinned": pinned,
    }
    with session_for(cfg) as session:
        snippet = add_snippet(session, settings=cfg, data=data)
        public = SnippetPublic.model_validate(snippet).model_dump(mode="json")
    if as_json:
        output.print_json(public)
        return
    output.say(f"snippet {public['id']} added: {public['title']}")


# ---------------------------------------------------------------- issue 14: editing


@app.command("edit")
def edit(
    snippet_id: int = typer.Argument(..., min=1, metavar="ID", help="The snippet to change."),
    title: str | None = typer.Option(None, "--title"),
    summary: str | None = typer.Option(None, "--summary", help="Markdown; kept as plain text."),
    url: str | None = typer.Option(None, "--url"),
    image_url: str | None = typer.Option(None, "--image-url"),
    image_alt: str | None = typer.Option(None, "--image-alt"),
    category: str | None = typer.Option(None, "--category"),
    published: datetime | None = typer.Option(
        None, "--published", metavar="ISO_DATE", parser=params.parse_when
    ),
    pinned: bool | None = typer.Option(None, "--pinned/--not-pinned"),
    as_json: bool = output.json_option(),
) -> None:
    """Change some fields of a snippet; the others stay."""
    from campaigns.content.snippet_library import edit_snippet

    given = {
        "title": title,
        "summary": summary,
        "url": url,
        "image_url": image_url,
        "image_alt": image_alt,
        "category": category,
        "published_at": published,
        "pinned": pinned,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        output.bad_usage("give at least one field to change, e.g. --title")
    cfg = settings()
    with session_for(cfg) as session:
        entry = edit_snippet(
            session, settings=cfg, snippet_id=snippet_id, changes=changes, actor=actor()
        )
        data = entry.to_dict()
    if as_json:
        output.print_json(data)
        return
    output.say(f"snippet {data['id']} changed: {data['title']}")


@app.command("retire")
def retire(
    snippet_id: int = typer.Argument(..., min=1, metavar="ID", help="The snippet to retire."),
    undo: bool = typer.Option(False, "--undo", help="Put a retired snippet back in use."),
    as_json: bool = output.json_option(),
) -> None:
    """Retire a snippet: no issue picks it again (issues that have it keep it)."""
    from campaigns.content.snippet_library import retire as retire_snippet
    from campaigns.content.snippet_library import unretire

    cfg = settings()
    with session_for(cfg) as session:
        change = unretire if undo else retire_snippet
        data = change(session, snippet_id=snippet_id, actor=actor()).to_dict()
    if as_json:
        output.print_json(data)
        return
    output.say(f"snippet {data['id']} {'back in use' if undo else 'retired'}: {data['title']}")
