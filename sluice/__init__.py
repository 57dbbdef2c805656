"""Sluice: event-driven batch pipelines on AWS, runnable whole on one machine."""

__version__ = "0.1.0"
