"""The HTTP status of each core error code, for every HTTP API of the port."""

from __future__ import annotations

from olivia.core.errors import ErrorCode

#: HTTP status of each core error code (the others: 400).
STATUS = {ErrorCode.NOAUTH: 401, ErrorCode.WRONGPASS: 401, ErrorCode.DENIED: 403,
          ErrorCode.OOM: 507, ErrorCode.NOTINT: 409, ErrorCode.NOKEY: 404,
          ErrorCode.TOOMANY: 413, ErrorCode.REPLY_TOO_LARGE: 413,
          ErrorCode.NOT_READY: 503, ErrorCode.INTERNAL: 500}


def status_of(code: ErrorCode) -> int:
    return STATUS.get(code, 400)
