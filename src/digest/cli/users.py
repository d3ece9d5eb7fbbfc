"""`digest users`: staff accounts and their API tokens.

A password this prints is one-time: the person's first sign-in must choose their own."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from digest import actions
from digest.cli.common import ACTOR, deps, out, print_json, require_database, table
from digest.staff import generate_password, list_users
from digest.store import session_scope

app = typer.Typer(no_args_is_help=True, help="Staff accounts: editors, ops, admins.")


@app.command("add")
def users_add(
    email: str,
    role: Annotated[str, typer.Option(help="editor, ops or admin.")],
    password_prompt: Annotated[bool, typer.Option("--password-prompt",
                                                  help="Type the password instead of generating one.")] = False,
) -> None:
    """Add a staff account; prints a one-time password (changed at the first sign-in) unless
    --password-prompt."""
    world = deps()
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True) if password_prompt \
        else generate_password()
    address, chosen = actions.users.add_user(world, ACTOR, email, role, password, one_time=not password_prompt)
    out.print(f"added {address} ({chosen})", markup=False)
    if not password_prompt:
        sys.stdout.write(f"one-time password: {password}\n")


@app.command("token")
def users_token(
    email: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
) -> None:
    """Create an API token for a user (printed once)."""
    token = actions.tokens.create_token(deps(), ACTOR, name, for_email=email)
    sys.stdout.write(token["token"] + "\n")


@app.command("revoke-token")
def users_revoke_token(token_id: Annotated[int, typer.Argument(metavar="TOKEN_ID")]) -> None:
    """Revoke an API token by its id (GET /api/v1/tokens lists them)."""
    revoked = actions.tokens.revoke_token(deps(), ACTOR, token_id)
    out.print(f"token {token_id}: {'revoked' if revoked else 'was not active (unknown or revoked already)'}")


@app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False) -> None:
    """List staff accounts: role, status, last sign-in."""
    require_database()
    with session_scope() as session:
        rows = [actions.user_json(user) for user in list_users(session)]
    if as_json:
        print_json(rows)
        return
    out.print(table(("id", "email", "role", "status", "password", "last sign-in"), (
        (r["id"], r["email"], r["role"], r["status"], "one-time" if r["must_change_password"] else "",
         r["last_login_at"] or "never") for r in rows)))


@app.command("disable")
def users_disable(email: str) -> None:
    """Disable an account: its sessions end and its API tokens stop working."""
    outcome = actions.users.disable(deps(), ACTOR, email)
    out.print(f"{outcome.data['email']}: {'disabled' if outcome.changed else 'was disabled already'}", markup=False)


@app.command("enable")
def users_enable(email: str) -> None:
    """Enable a disabled account again."""
    outcome = actions.users.enable(deps(), ACTOR, email)
    out.print(f"{outcome.data['email']}: {'enabled' if outcome.changed else 'was enabled already'}", markup=False)


@app.command("role")
def users_role(email: str, role: Annotated[str, typer.Option(help="editor, ops or admin.")]) -> None:
    """Change an account's role (the last active admin keeps theirs)."""
    outcome = actions.users.change_role(deps(), ACTOR, email, role)
    out.print(f"{outcome.data['email']}: {outcome.data['role']}{'' if outcome.changed else ' already'}", markup=False)


@app.command("reset")
def users_reset(email: str) -> None:
    """Print a new one-time password; the old one stops working, the user is signed out and
    must choose a new password at the next sign-in."""
    done = actions.users.reset(deps(), ACTOR, email)
    out.print(f"{done['email']}: password reset, signed out everywhere", markup=False)
    sys.stdout.write(f"one-time password: {done['password']}\n")
