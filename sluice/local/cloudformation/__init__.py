"""CloudFormation, answered by Sluice itself: stacks deployed through Sluice's deployer.

``aws cloudformation deploy``, ``sam deploy`` and boto3 reach this service on the local endpoint;
the stacks they create, update and delete are built by :mod:`sluice.local.deploy`, so Batch
resources land in the local Batch engine and functions in the local Lambda runtime (moto's own
CloudFormation, which moto 5.2.5 would otherwise serve, creates resources only moto sees).
"""
