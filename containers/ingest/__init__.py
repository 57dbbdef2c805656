"""Ingest job: stream the input object, validate it, write Parquet shards, then the manifest."""
