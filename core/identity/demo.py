"""Demo teams and users, so `make run` has someone to sign in as."""

from __future__ import annotations

from core.identity.tables import Team, User
from core.identity.users import create_team, create_user

DEMO_PASSWORD = "rapport-demo"
DEMO_USERS = [
    ("admin@example.com", "Ada Admin", ["administrator"], []),
    ("manager@example.com", "Max Manager", ["manager"], ["Sales"]),
    ("north@example.com", "Nora North", ["sales_representative"], ["Sales North"]),
    ("south@example.com", "Sam South", ["sales_representative"], ["Sales South"]),
    ("agent@example.com", "Sol Service", ["service_agent"], ["Service"]),
    ("field@example.com", "Fei Field", ["field_representative"], ["Sales North"]),
    ("viewer@example.com", "Val Viewer", ["read_only"], []),
]
DEMO_TEAMS = [("Sales", None), ("Sales North", "Sales"), ("Sales South", "Sales"),
              ("Service", None)]


async def seed_demo_users(rapport) -> None:
    for name, parent in DEMO_TEAMS:
        if not await Team.exists().where(Team.name == name).run():
            await create_team(name, parent)
    for email, name, roles, teams in DEMO_USERS:
        if not await User.exists().where(User.email == email).run():
            await create_user(email, name, DEMO_PASSWORD, roles=roles, teams=teams)
    from rich.console import Console

    Console().print(
        f"[bold]Demo login:[/bold] admin@example.com / {DEMO_PASSWORD} "
        "(also manager@, north@, south@, agent@, field@, viewer@example.com)"
    )
