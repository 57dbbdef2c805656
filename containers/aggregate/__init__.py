"""Aggregate job: merge every partial into the result, summary and _SUCCESS marker."""
