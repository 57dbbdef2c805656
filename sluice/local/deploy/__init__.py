"""Deploy a SAM/CloudFormation template to Sluice's local cloud.

>>> stack = deploy_template(Path("template.yaml"), endpoint_url="http://127.0.0.1:4566")
>>> stack.outputs["InputBucketName"]
"""

from sluice.local.deploy.deployer import deploy_template, deployed_stacks, supported_types
from sluice.local.deploy.errors import DeployError
from sluice.local.deploy.model import Created, DeployedStack

__all__ = ["Created", "DeployError", "DeployedStack", "deploy_template", "deployed_stacks", "supported_types"]
