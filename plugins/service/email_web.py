"""Placeholder until its helper lands it."""

ROUTES: list = []
