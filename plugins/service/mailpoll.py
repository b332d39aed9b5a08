"""Placeholder until its helper lands it."""


def register_commands(group):
    return None


async def startup(rapport):
    return None


async def shutdown(rapport):
    return None
