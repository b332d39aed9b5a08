"""Placeholder until its helper lands it."""


async def on_event(rapport, event):
    return None
