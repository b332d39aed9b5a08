"""Placeholder until its helper lands it (see the contract in the service brief)."""


async def route(rapport, case):
    """Return the changes routing makes to a new case (queue, owner, team, priority)."""
    return {}
