"""The wire protocols shared by the services Sluice serves itself, built from the botocore service models;
and (`botodata`) the botocore data every boto3 session of the process shares."""
