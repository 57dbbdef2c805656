"""Following a pipeline run through the AWS APIs: starting it, its records, progress, report, cost and timeline."""
