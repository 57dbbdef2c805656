"""Tests of the job containers (containers/): real job processes against a moto S3."""
