"""``newsletter users``: who may sign in to the console (create, list, disable)."""

from __future__ import annotations

import sys

import typer

from cli import output
from cli.context import actor, session_for, settings

app = output.App(help="People who sign in to the console at /admin/.")


def _password(from_stdin: bool) -> str:
    """The new password: the first line of stdin, or typed twice at a hidden prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@app.command("create")
def create(
    email: str = typer.Argument(
        ..., metavar="EMAIL", help="Their email address; they sign in with it."
    ),
    role: str = typer.Option("editor", "--role", metavar="ROLE", help="owner, editor or viewer."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Create a console user; the password (12 characters or more) is asked twice, hidden."""
    from newsletter import accounts

    chosen = accounts.parse_role(role)  # before the prompt: a typo costs no typing
    password = _password(password_stdin)
    with session_for(settings()) as session:
        user = accounts.create_user(session, email, chosen, password, actor=actor())
        shown = accounts.public(user)
    if as_json:
        output.print_json(shown.model_dump(mode="json"))
        return
    output.say(f"console user {shown.email} created ({shown.role.value}); sign in at /admin/login")


@app.command("list")
def list_(as_json: bool = output.json_option()) -> None:
    """Every console user with their role, last sign-in and whether disabled."""
    from newsletter import accounts

    with session_for(settings()) as session:
        users = [accounts.public(u) for u in accounts.list_users(session)]
    if as_json:
        output.print_json([u.model_dump(mode="json") for u in users])
        return
    if not users:
        output.say("no console users; create one with 'newsletter users create EMAIL --role owner'")
    for u in users:
        state = f"disabled {u.disabled_at:%Y-%m-%d}" if u.disabled_at else "active"
        seen = f"last login {u.last_login_at:%Y-%m-%d %H:%M}Z" if u.last_login_at else "never"
        output.say(f"{u.email:<32}  {u.role.value:<7}  {state:<19}  {seen}")


@app.command("disable")
def disable(
    email: str = typer.Argument(..., metavar="EMAIL", help="The user to stop from signing in."),
    as_json: bool = output.json_option(),
) -> None:
    """Stop a user from signing in; their open session ends at their next click."""
    from newsletter import accounts

    with session_for(settings()) as session:
        user = accounts.public(accounts.disable_user(session, email, actor=actor()))
    if as_json:
        output.print_json(user.model_dump(mode="json"))
        return
    output.say(f"console user {user.email} disabled")
