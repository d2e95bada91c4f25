"""The Python client of MemCube: `MemCube` (blocking) and `AsyncMemCube`, typed models, one error per status.

    from memcube_client import MemCube
    mc = MemCube("http://127.0.0.1:8000", api_key="mc_...")
    mc.memories.create("support-bot", "Prefers email over phone calls", kind="semantic")
    hits = mc.search("support-bot", "how should we contact this customer?").hits
"""

from memcube_client import models  # noqa: F401
from memcube_client._transport import RetryPolicy  # noqa: F401
from memcube_client.client import AsyncMemCube, MemCube, __version__  # noqa: F401
from memcube_client.errors import (APIConnectionError, APIStatusError, APITimeoutError,  # noqa: F401
                                   AuthenticationError, BadRequest, Conflict, InvalidInput, MemCubeError,
                                   NotFound, PermissionDenied, RateLimited, ServerError, StaleVersion, TooLarge,
                                   Unavailable, UnsupportedMediaType)
from memcube_client.models import MemoryInput, MessageInput, StepInput  # noqa: F401
from memcube_client.resources import UNSET  # noqa: F401
