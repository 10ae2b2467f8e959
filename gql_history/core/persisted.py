"""Persisted operations: documents named by their hash instead of sent whole.

Two modes, as Apollo defines them. Automatic persisted queries (APQ): a
client sends ``extensions.persistedQuery.sha256Hash`` alone; a hash not held
yet is answered "not found", and the client sends the document with its hash,
which is checked and kept (bounded, least recently used first out) for next
time. An allow-list: a manifest of ``hash -> document`` (what GraphQL Code
Generator's client preset writes with ``persistedDocuments``, or an Apollo
persisted query manifest) is the only set of operations that run; nothing is
learnt from clients.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import (
    InvalidManifestError,
    InvalidQueryError,
    PersistedQueryNotFoundError,
    PersistedQueryNotInListError,
    PersistedQueryNotSupportedError,
    QueryNotInSafelistError,
)

#: Documents longer than this (in characters) run but are not kept: a
#: frontend's operations are a few KB, and the cache's memory stays bounded.
MAX_KEPT_DOCUMENT = 10_000

#: An allow-list: a manifest file, or its operations by hash.
Manifest = str | Path | Mapping[str, str]


def _normal(digest: str) -> str:
    """A hash as compared: lowercase, without GraphQL Code Generator's
    ``sha256:`` prefix."""
    digest = digest.lower()
    return digest.removeprefix("sha256:")


def sha256_hex(document: str) -> str:
    """The hash naming ``document``: SHA-256 of its UTF-8, in lowercase hex."""
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()


class PersistedDocuments:
    """The documents requests may name by hash, and whether others may run.

    With ``manifest``, only its operations run (by hash, or sent whole);
    otherwise any document runs, and up to ``cache_size`` documents sent
    with their hash are kept for APQ (``0`` turns APQ off).
    """

    def __init__(
        self, *, manifest: Manifest | None = None, cache_size: int = 1000
    ) -> None:
        self.allow_list = None if manifest is None else load_manifest(manifest)
        """The only operations that run, by the hash clients send; or None."""
        self._listed = (
            frozenset()
            if self.allow_list is None
            else frozenset(map(sha256_hex, self.allow_list.values()))
        )
        self.cache_size = cache_size
        self._cache: OrderedDict[str, str] = OrderedDict()

    def resolve(
        self, query: str | None, extensions: Mapping[str, Any] | None
    ) -> str | None:
        """The document a request runs: ``query``, or the one its
        ``extensions.persistedQuery`` names (``None`` when it has neither).

        Raises a ``PersistedQueryError`` when that document is not held or
        not allowed, and ``InvalidQueryError`` when the request is malformed.
        """
        persisted = None if extensions is None else extensions.get("persistedQuery")
        if persisted is None:
            if query is None:
                return None
            if self.allow_list is not None and sha256_hex(query) not in self._listed:
                raise QueryNotInSafelistError(
                    "this server runs only the operations of its persisted-"
                    "documents manifest: send one's hash as "
                    "extensions.persistedQuery.sha256Hash"
                )
            return query
        digest = _hash_of(persisted)
        if self.allow_list is not None:
            return self._listed_document(digest, query)
        if not self.cache_size:
            raise PersistedQueryNotSupportedError("PersistedQueryNotSupported")
        if query is None:
            found = self._cache.get(digest)
            if found is None:
                raise PersistedQueryNotFoundError("PersistedQueryNotFound")
            self._cache.move_to_end(digest)
            return found
        if sha256_hex(query) != digest:
            raise InvalidQueryError("provided sha does not match query")
        if len(query) <= MAX_KEPT_DOCUMENT:
            self._cache[digest] = query
            self._cache.move_to_end(digest)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return query

    def _listed_document(self, digest: str, query: str | None) -> str:
        assert self.allow_list is not None
        found = self.allow_list.get(digest)
        if found is None:
            raise PersistedQueryNotInListError(
                f"no operation with hash {digest} in the persisted-documents manifest"
            )
        if query is not None and query != found:
            raise InvalidQueryError(
                "the query sent differs from the listed operation its hash names"
            )
        return found


def _hash_of(persisted: Any) -> str:
    """The hash of an ``extensions.persistedQuery``, checked."""
    if not isinstance(persisted, Mapping) or persisted.get("version") != 1:
        raise InvalidQueryError(
            "unsupported persisted query: extensions.persistedQuery must be "
            '{"version": 1, "sha256Hash": "<hex>"}'
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not digest:
        raise InvalidQueryError(
            "extensions.persistedQuery.sha256Hash must be a hex string"
        )
    return _normal(digest)


def load_manifest(manifest: Manifest) -> dict[str, str]:
    """Operations by hash from a manifest: a JSON object of ``hash ->
    document`` (GraphQL Code Generator's ``persisted-documents.json``), an
    Apollo persisted query manifest, or such a mapping itself."""
    if isinstance(manifest, Mapping):
        data: Any = manifest
    else:
        try:
            data = json.loads(Path(manifest).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidManifestError(
                f"cannot read the persisted-documents manifest {manifest}: {exc}"
            ) from exc
    if isinstance(data, Mapping) and isinstance(data.get("operations"), list):
        data = {
            op.get("id"): op.get("body")
            for op in data["operations"]
            if isinstance(op, Mapping)
        }
    if not isinstance(data, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) and key
        for key, value in data.items()
    ):
        raise InvalidManifestError(
            "a persisted-documents manifest maps each hash to its document "
            '({"<hash>": "query ..."}), or is an Apollo manifest'
        )
    return {_normal(key): value for key, value in data.items()}
