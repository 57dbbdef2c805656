"""IAM for the local cloud: policy evaluation for a single account."""
