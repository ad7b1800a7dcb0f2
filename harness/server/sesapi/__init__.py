"""The SES HTTP API (v2 JSON REST and v1 Query/XML) under the same plan and account as SMTP.

:class:`ApiService` answers what real SDKs send with an ``endpoint_url``: boto3's ``sesv2`` and
``ses`` clients, the AWS SDK for JavaScript v3. `FakeSES` runs it on a port of its own (its
``api_url``); ``ses-harness serve`` mounts it on its HTTP port. Messages land in the same ledger
(``via = "api-v2"`` or ``"api-v1"``, session 0) and count on the same rate bucket and quota.
"""

from harness.server.sesapi.app import ApiService
from harness.server.sesapi.mount import add_routes, make_app, serves

__all__ = ["ApiService", "add_routes", "make_app", "serves"]
