"""Volume URLs in one canonical form, so two spellings of one place compare equal: a local path,
``file://``, ``precomputed://file://`` and Neuroglancer's ``zarr://``/``zarr3://`` forms of the
same folder resolve to one absolute ``file://`` URL (symlinks followed); ``s3://`` and ``gs://``
keep their bucket and key with redundant slashes removed. ``refuse_overwriting`` uses this so no
command ever writes over one of its own inputs."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable

from pipeline.errors import InputError

NEUROGLANCER_SCHEMES = ("precomputed://", "zarr://", "zarr3://", "zarr2://", "n5://")
_PIPE = re.compile(r"^(?P<url>[^|]+)\|(?P<format>zarr[23]?|precomputed):?/?$")
_H5 = re.compile(r"^(?P<file>.+?\.(?:h5|hdf5|hdf))(?:/(?P<dataset>.*))?$")


def volume_url(url: str) -> str:
    """A URL in Neuroglancer's source forms as petaseg opens it: ``zarr://X``, ``zarr2://X``,
    ``zarr3://X`` and ``X|zarr3:`` (Neuroglancer's pipeline form) are the Zarr array ``X``;
    ``X|precomputed:`` is ``precomputed://X``; ``file:///`` stays a local path. Anything else is
    returned unchanged."""
    text = str(url).strip()
    m = _PIPE.match(text)
    if m:
        text = m.group("url")
        if m.group("format") == "precomputed":
            return text if text.startswith("precomputed://") else f"precomputed://{text}"
    for prefix in ("zarr://", "zarr2://", "zarr3://"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def canonical_url(url: str) -> str:
    """``url`` as one absolute form: ``file:///abs/real/path[/inner]`` or ``s3://bucket/key``."""
    text = volume_url(url)
    for prefix in NEUROGLANCER_SCHEMES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    scheme, sep, rest = text.partition("://")
    if sep and scheme != "file":
        return f"{scheme}://{posixpath.normpath('/' + rest).lstrip('/')}"
    path = rest if sep else text
    m = _H5.match(path)
    if m:  # a dataset inside an HDF5 file: the file is a real path, the dataset is not
        inner = (m.group("dataset") or "").strip("/")
        return f"file://{_real(m.group('file'))}" + (f"/{inner}" if inner else "")
    return f"file://{_real(path)}"


def _real(path: str) -> str:
    """The real absolute path, following symlinks of the part that exists (an output usually
    does not exist yet)."""
    path = os.path.abspath(os.path.expanduser(path))
    head, tail = path, []
    while head and not os.path.exists(head) and head != os.path.dirname(head):
        head, name = os.path.split(head)
        tail.append(name)
    return os.path.join(os.path.realpath(head), *reversed(tail))


def overlap(a: str, b: str) -> str | None:
    """How the place ``a`` relates to ``b``: "is" (the same), "holds" (``b`` lies inside ``a``),
    "lies inside" (``a`` lies inside ``b``), or None when they are apart."""
    ca, cb = canonical_url(a).rstrip("/"), canonical_url(b).rstrip("/")
    if ca == cb:
        return "is"
    if cb.startswith(ca + "/"):
        return "holds"
    if ca.startswith(cb + "/"):
        return "lies inside"
    return None


def refuse_overwriting(
    outputs: Iterable[str | None], inputs: Iterable[str | None], what: str
) -> None:
    """Refuse before anything is written when an output of ``what`` is one of its inputs, lies
    inside one, or holds one (writing it would overwrite the input)."""
    ins = [i for i in inputs if i]
    for out in (o for o in outputs if o):
        for source in ins:
            relation = overlap(out, source)
            if relation is not None:
                same = f" ({canonical_url(source)})" if relation == "is" else ""
                raise InputError(
                    f"{what}: the output {out} {relation} the input {source}{same}; writing it "
                    "would overwrite that input: write to another URL"
                )
