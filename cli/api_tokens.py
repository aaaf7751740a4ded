"""``newsletter api-tokens``: bearer tokens for the HTTP API (create, list, revoke)."""

from __future__ import annotations

import typer

from cli import output
from cli.context import session_for, settings

app = output.App(help="Bearer tokens for the HTTP API.")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Who or what uses the token, e.g. 'marketing-app'."),
    as_json: bool = output.json_option(),
) -> None:
    """Create a bearer token; it is shown once, only its hash is stored."""
    from newsletter import api_tokens

    with session_for(settings()) as session:
        token, plaintext = api_tokens.create(session, name=name)
    if as_json:
        output.print_json({**token.model_dump(mode="json"), "token": plaintext})
        return
    output.say(f"API token {token.name!r} (id {token.id}); copy it now, it is not shown again:")
    output.write(plaintext + "\n")


@app.command("list")
def list_(as_json: bool = output.json_option()) -> None:
    """Tokens by name (never the tokens themselves)."""
    from newsletter import api_tokens

    with session_for(settings()) as session:
        tokens = api_tokens.list_tokens(session)
    if as_json:
        output.print_json([t.model_dump(mode="json") for t in tokens])
        return
    if not tokens:
        output.say("no API tokens")
    for t in tokens:
        state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
        used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}Z" if t.last_used_at else "never used"
        output.say(f"{t.id:>4}  {t.name:<24}  {state:<18}  {used}")


@app.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="The name of the token to revoke."),
    as_json: bool = output.json_option(),
) -> None:
    """Revoke a token at once; requests with it get 401."""
    from newsletter import api_tokens

    with session_for(settings()) as session:
        token = api_tokens.revoke(session, name=name)
    if as_json:
        output.print_json(token.model_dump(mode="json"))
        return
    output.say(f"API token {token.name!r} revoked")
