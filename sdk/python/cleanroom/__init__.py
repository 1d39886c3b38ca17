"""Python SDK of cleanroom, a self-hostable data clean room server.

Publish a clean room, upload datasets encrypted on this machine, run its
computations and download their results::

    import cleanroom as cr
    from cleanroom.analytics import AnalyticsDcrBuilder, RawDataNodeDefinition

    client = cr.create_client("you@example.com", "crt_...")   # server from CLEANROOM_URL
    builder = AnalyticsDcrBuilder(client=client)
    ...
    dcr = client.publish_analytics_dcr(builder.build())
    dcr.get_node("input_data_node").upload_and_publish_dataset(open("data.csv", "rb"), cr.Key(), "data.csv")
    results = dcr.get_node("my_computation").run_computation_and_get_results_as_zip()

Table data nodes (validated in the enclave), SQL and R computations, and
drafts tested before publishing ("test all computations") are in
:mod:`cleanroom.analytics` too.

The names follow the Decentriq Python SDK, so scripts written for it run
after changing their imports.
"""

from . import analytics, crypto, enclave_specifications
from .client import DEFAULT_URL, Client, Dataset, DcrSummary, Job, create_client
from .crypto import Key
from .enclave_specifications import EnclaveSoftwareWarning, EnclaveSpecifications
from .errors import (CleanroomError, ConflictError, EnclaveNotTrusted, ForbiddenError, IntegrityError,
                     InternalError, InvalidError, JobFailed, NotFoundError, TooLargeError,
                     UnauthorizedError, UnreachableError)

__version__ = "0.1.0"

__all__ = [
    "analytics", "crypto", "enclave_specifications",
    "DEFAULT_URL", "Client", "Dataset", "DcrSummary", "Job", "create_client", "Key",
    "EnclaveSoftwareWarning", "EnclaveSpecifications",
    "CleanroomError", "ConflictError", "EnclaveNotTrusted", "ForbiddenError", "IntegrityError",
    "InternalError", "InvalidError", "JobFailed", "NotFoundError", "TooLargeError",
    "UnauthorizedError", "UnreachableError",
]
