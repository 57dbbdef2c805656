"""Transform job: partial aggregates of one shard (array child i, or shard 0 when single)."""
