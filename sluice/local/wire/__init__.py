"""The wire protocols shared by the services Sluice serves itself, built from the botocore service models."""
