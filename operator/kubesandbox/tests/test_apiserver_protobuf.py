"""Decoding the protobuf bodies that typed kubectl and helm commands send."""

from __future__ import annotations

import pytest

from kubesandbox.apiserver.http.protobuf import ProtobufUnsupported, decode

# Bodies captured from kubectl v1.33: `create configmap c1 --from-literal=a=b --from-literal=x=yy`
# and `create role r1 --verb=get --resource=pods` (gogo-protobuf writes every zero value).
CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d6170122c0a190a02633112001a0764656661756c74220"
    "02a0032003800420012060a016112016212070a0178120279791a002200"
)
ROLE = bytes.fromhex(
    "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311204526f6c65"
    "12230a120a02723112001a0022002a00320038004200120d0a0367657412001a04706f64731a002200"
)


def _varint(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw)


def test_a_configmap_decodes_with_zero_values_omitted() -> None:
    assert decode(CONFIGMAP) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c1", "namespace": "default"},
        "data": {"a": "b", "x": "yy"},
    }


def test_empty_strings_inside_repeated_fields_are_kept() -> None:
    assert decode(ROLE)["rules"] == [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]


def test_secret_data_is_base64_as_in_json() -> None:
    entry = _field(1, b"pw") + _field(2, b"s3")
    raw = _field(1, _field(1, b"s")) + _field(2, entry) + _field(3, b"Opaque")
    assert decode(_envelope("v1", "Secret", raw))["data"] == {"pw": "czM="}


def test_a_kind_without_a_table_is_refused() -> None:
    with pytest.raises(ProtobufUnsupported, match="kind CronJob"):
        decode(_envelope("batch/v1", "CronJob", b""))


def test_an_unknown_field_with_a_value_is_refused_not_dropped() -> None:
    raw = _field(1, _field(1, b"c")) + _field(9, b"surprise")
    with pytest.raises(ProtobufUnsupported, match="field 9 of ConfigMap"):
        decode(_envelope("v1", "ConfigMap", raw))


def test_a_body_without_the_envelope_is_refused() -> None:
    with pytest.raises(ProtobufUnsupported):
        decode(b"\x0a\x00")
