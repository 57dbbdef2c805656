"""The `sluice` command line (entry point: sluice.cli.main:main)."""
