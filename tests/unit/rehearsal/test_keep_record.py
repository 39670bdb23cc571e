"""infra.rehearsal.keep: how a kept deployment recognises an unchanged resource, and
a record that is never half written."""

from __future__ import annotations

import json

import pulumi
import pytest

from infra.rehearsal.keep import Entry, KeepError, Record, inputs_digest, record_path
from infra.rehearsal.shapes import _SECRET_SIG, _SIG_KEY  # the wire format of a secret


def test_a_file_asset_counts_by_its_content_not_its_path(tmp_path):
    package = tmp_path / "lambda_deployment.zip"
    package.write_bytes(b"code v1")
    before = inputs_digest({"key": "lambda/dev/x.zip", "source": pulumi.FileAsset(str(package))})
    package.write_bytes(b"code v2")
    after = inputs_digest({"key": "lambda/dev/x.zip", "source": pulumi.FileAsset(str(package))})
    assert before != after


def test_the_digest_ignores_key_order_and_sees_a_changed_secret():
    def secret(value: str) -> dict:
        return {_SIG_KEY: _SECRET_SIG, "value": value}

    assert inputs_digest({"a": 1, "b": [1, 2]}) == inputs_digest({"b": [1, 2], "a": 1})
    assert inputs_digest({"s": secret("one")}) != inputs_digest({"s": secret("two")})


def test_a_record_of_another_run_of_the_cloud_is_ignored(tmp_path):
    path = record_path(tmp_path, "dev")
    record = Record(path, "token-1", {"t::n": Entry("t", "n", "d", "id-1", {"arn": "x"})})
    record.save()
    assert Record.load(path, "token-1").entries["t::n"].physical_id == "id-1"
    assert Record.load(path, "token-2").entries == {}


def test_an_unreadable_record_is_one_error_naming_the_file(tmp_path):
    path = record_path(tmp_path, "dev")
    path.write_text("{not json")
    with pytest.raises(KeepError, match=str(path)):
        Record.load(path, "token-1")


def test_a_save_that_fails_half_way_leaves_the_previous_record_whole(tmp_path):
    path = record_path(tmp_path, "dev")
    Record(path, "t", {"a::b": Entry("a", "b", "d1", "id")}).save()
    before = path.read_text()
    # a key json cannot write: json.dump fails part-way through the temp file
    broken = Record(path, "t", {"a::b": Entry("a", "b", "d2", "id", {("not", "str"): 1})})
    with pytest.raises(TypeError):
        broken.save()
    assert path.read_text() == before
    assert json.loads(before)["resources"]["a::b"]["digest"] == "d1"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
