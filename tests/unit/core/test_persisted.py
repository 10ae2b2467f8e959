"""Persisted documents: APQ's cache, the allow-list and their refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gql_history.core.persisted import (
    MAX_KEPT_DOCUMENT,
    PersistedDocuments,
    load_manifest,
    sha256_hex,
)
from gql_history.errors import (
    InvalidManifestError,
    InvalidQueryError,
    PersistedQueryNotFoundError,
    PersistedQueryNotInListError,
    PersistedQueryNotSupportedError,
    QueryNotInSafelistError,
)

QUERY = "{ taskNames { task } }"
OTHER = "{ taskTags { tag } }"


def persisted(digest: str, version: Any = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


def test_persisted_sha256_is_the_hex_digest_apollo_sends() -> None:
    # printf '%s' '{ taskNames { task } }' | sha256sum
    assert sha256_hex(QUERY) == (
        "58b16ed3e3a13eb65616d0b34c03761d353eca8758a19756f85a54065906e356"
    )


def test_persisted_apq_registers_a_document_then_serves_it_by_hash() -> None:
    documents = PersistedDocuments()
    digest = sha256_hex(QUERY)
    with pytest.raises(PersistedQueryNotFoundError, match="PersistedQueryNotFound"):
        documents.resolve(None, persisted(digest))
    assert documents.resolve(QUERY, persisted(digest)) == QUERY
    assert documents.resolve(None, persisted(digest)) == QUERY
    assert documents.resolve(None, persisted(digest.upper())) == QUERY


def test_persisted_apq_runs_plain_documents_and_requests_without_one() -> None:
    documents = PersistedDocuments()
    assert documents.resolve(QUERY, None) == QUERY
    assert documents.resolve(QUERY, {"other": 1}) == QUERY
    assert documents.resolve(None, None) is None


@pytest.mark.parametrize(
    ("extensions", "message"),
    [
        (persisted(sha256_hex(OTHER)), "provided sha does not match query"),
        (persisted(sha256_hex(QUERY), version=2), "unsupported persisted query"),
        ({"persistedQuery": "abc"}, "unsupported persisted query"),
        (persisted(""), "must be a hex string"),
        ({"persistedQuery": {"version": 1, "sha256Hash": 5}}, "must be a hex"),
    ],
)
def test_persisted_apq_refuses_malformed_requests(
    extensions: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidQueryError, match=message) as caught:
        PersistedDocuments().resolve(QUERY, extensions)
    assert type(caught.value) is InvalidQueryError


def test_persisted_apq_cache_keeps_the_most_recently_used() -> None:
    documents = PersistedDocuments(cache_size=2)
    queries = [
        f'{{ taskNames(filter: {{task: ["t{i}"]}}) {{ task }} }}' for i in range(3)
    ]
    for query in queries[:2]:
        documents.resolve(query, persisted(sha256_hex(query)))
    documents.resolve(None, persisted(sha256_hex(queries[0])))  # used again
    documents.resolve(queries[2], persisted(sha256_hex(queries[2])))
    assert documents.resolve(None, persisted(sha256_hex(queries[0]))) == queries[0]
    assert documents.resolve(None, persisted(sha256_hex(queries[2]))) == queries[2]
    with pytest.raises(PersistedQueryNotFoundError):
        documents.resolve(None, persisted(sha256_hex(queries[1])))


def test_persisted_apq_runs_a_long_document_without_keeping_it() -> None:
    documents = PersistedDocuments()
    long = "{ taskNames { task } }" + " " * MAX_KEPT_DOCUMENT
    digest = sha256_hex(long)
    assert documents.resolve(long, persisted(digest)) == long
    with pytest.raises(PersistedQueryNotFoundError):
        documents.resolve(None, persisted(digest))


def test_persisted_apq_off_says_not_supported() -> None:
    documents = PersistedDocuments(cache_size=0)
    with pytest.raises(PersistedQueryNotSupportedError):
        documents.resolve(QUERY, persisted(sha256_hex(QUERY)))
    assert documents.resolve(QUERY, None) == QUERY


def test_persisted_allow_list_runs_only_its_operations() -> None:
    documents = PersistedDocuments(manifest={f"sha256:{sha256_hex(QUERY)}": QUERY})
    digest = sha256_hex(QUERY)
    assert documents.resolve(None, persisted(digest)) == QUERY
    assert documents.resolve(None, persisted(f"sha256:{digest}")) == QUERY
    assert documents.resolve(QUERY, None) == QUERY  # a listed document, sent whole
    with pytest.raises(QueryNotInSafelistError, match="persisted-documents manifest"):
        documents.resolve(OTHER, None)
    with pytest.raises(PersistedQueryNotInListError, match=sha256_hex(OTHER)):
        documents.resolve(None, persisted(sha256_hex(OTHER)))
    # nothing is learnt from clients
    with pytest.raises(PersistedQueryNotInListError):
        documents.resolve(OTHER, persisted(sha256_hex(OTHER)))
    with pytest.raises(InvalidQueryError, match="differs from the listed"):
        documents.resolve(OTHER, persisted(digest))


def test_persisted_manifest_reads_codegen_and_apollo_files(tmp_path: Path) -> None:
    codegen = tmp_path / "persisted-documents.json"
    codegen.write_text(json.dumps({f"sha256:{sha256_hex(QUERY)}": QUERY}))
    apollo = tmp_path / "apollo.json"
    apollo.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [
                    {
                        "id": sha256_hex(QUERY),
                        "name": "T",
                        "type": "query",
                        "body": QUERY,
                    }
                ],
            }
        )
    )
    expected = {sha256_hex(QUERY): QUERY}
    assert load_manifest(codegen) == expected
    assert load_manifest(str(apollo)) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read"),
        ("[1, 2]", "maps each hash to its document"),
        ('{"abc": 1}', "maps each hash to its document"),
    ],
)
def test_persisted_manifest_refuses_a_malformed_file(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(content)
    with pytest.raises(InvalidManifestError, match=message):
        PersistedDocuments(manifest=path)
    with pytest.raises(InvalidManifestError, match="cannot read"):
        load_manifest(tmp_path / "missing.json")
