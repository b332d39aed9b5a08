"""``rapport user ...`` and ``rapport token ...``: staff users and API tokens from scripts."""

from __future__ import annotations

import asyncio
import sys

import click

from core.identity.users import UserError


def _run(ctx: click.Context, work):
    """Run ``work(rapport)`` against the migrated database; turn input errors into a clear
    message and a non-zero exit."""
    from core import db
    from core.cli import get_rapport

    rapport = get_rapport(ctx)

    async def main():
        rapport.activate()
        await db.connect(rapport.engine, pool_size=2)
        try:
            await db.ensure_migrated(rapport.piccolo_apps())
            return await work(rapport)
        finally:
            await db.disconnect(rapport.engine)

    try:
        return asyncio.run(main())
    except UserError as exc:
        raise click.ClickException(f"{exc.field}: {exc.message}") from None


def _read_password() -> str:
    """From a hidden prompt (asked twice) on a terminal; otherwise the first line of stdin,
    so scripts can pipe it in without it showing up in the process list."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        raise click.ClickException("password: nothing on standard input")
    return line.rstrip("\r\n")


@click.group(help="Staff users.")
def user() -> None:
    pass


@user.command(name="create", help="Create a staff user. The password is asked for (or read "
              "from standard input when it is not a terminal).")
@click.argument("email")
@click.option("--role", "roles", multiple=True, required=True,
              help="Role key, e.g. administrator (repeat for several).")
@click.option("--name", default="", help="Display name (defaults to the email).")
@click.option("--team", "teams", multiple=True, help="Team name (repeat for several).")
@click.pass_context
def create_user_command(ctx: click.Context, email: str, roles: tuple[str, ...], name: str,
                        teams: tuple[str, ...]) -> None:
    from core import audit
    from core.identity.tables import Role
    from core.identity.users import create_user

    async def check_roles(rapport):
        known = [r["key"] for r in await Role.select(Role.key).order_by(Role.key).run()]
        unknown = [r for r in roles if r not in known]
        if unknown:
            raise UserError("role", f"unknown role {unknown[0]!r}; roles: {', '.join(known)}")

    # Refuse a bad role before asking for a password nobody will use.
    _run(ctx, check_roles)
    password = _read_password()

    async def create(rapport):
        from core.identity.administrators import grant_administration

        user_id = await create_user(email, name, password, roles=list(roles), teams=list(teams))
        await audit.record(None, "create", "core_user", user_id,
                           summary=f"created from the command line with roles {', '.join(roles)}")
        # "--role administrator" must give administration even if the role's grant was lost
        # (instances from before removing the last one was refused).
        restored = await grant_administration(rapport, email) if "administrator" in roles else []
        return user_id, restored

    user_id, restored = _run(ctx, create)
    click.echo(f"Created user {user_id}: {email.strip().lower()} ({', '.join(roles)})")
    for line in restored:
        click.echo(f"Also {line}.")


@user.command(name="grant-admin", help="Rescue: make EMAIL an active administrator (restoring "
              "the Administrator role and its '*' grant if they were removed).")
@click.argument("email")
@click.pass_context
def grant_admin_command(ctx: click.Context, email: str) -> None:
    from core import audit
    from core.identity.administrators import grant_administration

    async def rescue(rapport):
        done = await grant_administration(rapport, email)
        if done:
            await audit.record(None, "permission_change", "core_user",
                               summary=f"grant-admin for {email} from the command line: "
                                       + "; ".join(done))
        return done

    done = _run(ctx, rescue)
    for line in done:
        click.echo(f"{line[0].upper()}{line[1:]}.")
    click.echo(f"{email.strip().lower()} is an active administrator.")


@click.group(help="API tokens.")
def token() -> None:
    pass


@token.command(name="create", help="Create an API token for a user. The token is printed "
               "alone on the last line and never shown again.")
@click.option("--user", "email", required=True, help="Email of the token's user.")
@click.option("--name", default="", help="What the token is for.")
@click.option("--scope", "scopes", multiple=True,
              help="Permission pattern the token is limited to (repeat; default '*').")
@click.option("--expires-days", type=click.IntRange(min=1), default=None,
              help="Days until the token expires (default: never).")
@click.pass_context
def create_token_command(ctx: click.Context, email: str, name: str, scopes: tuple[str, ...],
                         expires_days: int | None) -> None:
    from core import audit
    from core.identity.tokens import create_token_for_email

    async def create(rapport):
        token_value, row = await create_token_for_email(
            rapport, email, name=name, scopes=list(scopes), expires_days=expires_days)
        await audit.record(None, "token_create", "core_api_token", row["id"],
                           summary=f"{row['name']} ({row['prefix']}…) for {email}")
        return token_value, row

    token_value, row = _run(ctx, create)
    expires = row["expires_at"].strftime("%Y-%m-%d") if row["expires_at"] else "never"
    click.echo(f"Token {row['name']!r} for {email} (scopes: {' '.join(scopes) or '*'}; "
               f"expires: {expires}). Store it now; it is not shown again:", err=False)
    click.echo(token_value)
