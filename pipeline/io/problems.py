"""Storage problems a user can fix, turned into one message that names the volume and the fix:
missing S3 credentials, an unreachable endpoint, access refused, a read-only or full disk,
damaged metadata. ``storage_access(url)`` wraps the first touch of a store; anything it does not
recognise passes through unchanged (a bug stays a bug)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator

from pipeline.errors import InputError

NO_CREDENTIALS = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}
UNREACHABLE = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ClientConnectorError",
    "ServerDisconnectedError",
}
DENIED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken"}
NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def storage_problem(error: BaseException, url: str) -> str | None:
    """The message for ``error`` met while touching ``url``, or None for any other error."""
    for e in _chain(error):
        name = type(e).__name__
        if name in NO_CREDENTIALS:
            return (
                f"{url}: no S3 credentials found: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or PETASEG_S3_ANON=1 for a public bucket"
            )
        if name in UNREACHABLE:
            endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("PETASEG_S3_ENDPOINT")
            where = f"the endpoint {endpoint} (AWS_ENDPOINT_URL)" if endpoint else "the endpoint"
            return (
                f"{url}: cannot reach {where}: {e}; check AWS_ENDPOINT_URL (or "
                "PETASEG_S3_ENDPOINT), the host and port, and the network"
            )
        if name in DENIED or any(code in str(e) for code in DENIED):
            return f"{url}: the store refused the request ({e}); check the credentials and rights"
        if isinstance(e, json.JSONDecodeError):
            return (
                f"{url}: its metadata is not valid JSON ({e}); the volume is damaged: restore "
                "its zarr.json from a copy, or write the volume again"
            )
        if isinstance(e, OSError) and e.errno in NOT_WRITABLE:
            target = e.filename or url
            return (
                f"{url}: cannot write {target}: {e.strerror or e}; choose a location you can "
                "write to (and that has free space)"
            )
        if isinstance(e, PermissionError):
            return f"{url}: permission denied ({e}); choose a location you may read and write"
    return None


@contextlib.contextmanager
def storage_access(url: str) -> Iterator[None]:
    """Turn a storage problem a user can fix (see ``storage_problem``) into an InputError."""
    try:
        yield
    except InputError:
        raise
    except Exception as e:
        problem = storage_problem(e, url)
        if problem is None:
            raise
        raise InputError(problem) from None
