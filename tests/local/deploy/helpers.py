"""What the deployer's tests share: the fixture application."""

from __future__ import annotations

from pathlib import Path

APP = Path(__file__).parent / "fixtures" / "app"
