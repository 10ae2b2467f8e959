"""Python types of the API's custom scalars, copied into the generated client."""

from typing import Any

#: ``JSON``: in this API always an object (a run's params, a params filter).
JSONObject = dict[str, Any]
