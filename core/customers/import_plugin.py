"""Hook implementations for bringing customer data in and keeping it clean: CSV and vCard
import and export, likely duplicates and merging (core module, always enabled)."""

from __future__ import annotations
