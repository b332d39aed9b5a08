"""Core's Piccolo app, as Piccolo's CLI expects to find it."""

from core.instance import APP_CONFIG

__all__ = ["APP_CONFIG"]
