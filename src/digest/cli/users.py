"""`digest users`: staff accounts and their API tokens."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from digest import actions
from digest.cli.common import ACTOR, deps, out
from digest.staff import generate_password

app = typer.Typer(no_args_is_help=True, help="Staff accounts: editors, ops, admins.")


@app.command("add")
def users_add(
    email: str,
    role: Annotated[str, typer.Option(help="editor, ops or admin.")],
    password_prompt: Annotated[bool, typer.Option("--password-prompt",
                                                  help="Type the password instead of generating one.")] = False,
) -> None:
    """Add a staff account; prints a one-time password unless --password-prompt."""
    world = deps()
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True) if password_prompt \
        else generate_password()
    address, chosen = actions.users.add_user(world, ACTOR, email, role, password)
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
