"""pytest plugin loaded into moto's own test run (`-p sluice_peer_plugin`), never by Sluice's suite.

moto's server mode resets the server before each test with an unsigned
`POST /moto-api/reset`. The local cloud serves nothing unsigned, so this plugin makes that reset
a SigV4-signed request with the administrator's key (from the environment, as every other call
of the run). Nothing else of moto's test helpers changes.
"""

from __future__ import annotations

import os

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.core.models import ServerModeMockAWS


def _signed_reset(self: ServerModeMockAWS) -> None:
    url = f"{os.environ['TEST_SERVER_MODE_ENDPOINT']}/moto-api/reset"
    request = AWSRequest(method="POST", url=url, data=b"")
    credentials = Credentials(
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
        os.environ.get("AWS_SESSION_TOKEN"),
    )
    SigV4Auth(credentials, "moto", "us-east-1").add_auth(request)
    response = requests.post(url, headers=dict(request.headers.items()), data=b"", timeout=60)
    response.raise_for_status()


ServerModeMockAWS.reset = _signed_reset  # type: ignore[method-assign]
