"""Placeholder until its helper lands it (see the contract in the service brief)."""


async def targets(rapport, case, now):
    """Return the SLA policy and deadlines for a case opened or re-prioritised at ``now``."""
    return {}


async def on_status_change(rapport, case, old, new, now):
    """Return the changes the SLA clock makes when a case's status changes."""
    return {}


def register_commands(group):
    return None


async def startup(rapport):
    return None


async def shutdown(rapport):
    return None
