"""What a plugin's describe_metadata may put in metadata.json: never a core-owned field; schema fields only
for its own format; other plugins only under extra_metadata, without replacing what another wrote."""

from __future__ import annotations

import json

import pytest
from conftest import CNN, make_plugin_dist
from modelport.errors import PluginContractError
from modelport.folder.metadata import CORE_OWNED, Contribution, merge_plugin_fields


def _base() -> dict:
    return {"export_format": "pt2", "validation": {"status": "skipped"}, "precision": "fp32",
            "extra_metadata": {"pt2": {"strict": False}}}


@pytest.mark.parametrize("key", sorted(CORE_OWNED))
def test_no_plugin_may_set_a_core_owned_field(key):
    for own in (True, False):
        with pytest.raises(PluginContractError, match=f"plugin acme 1.0 broke the contract: .*{key}"):
            merge_plugin_fields(_base(), [Contribution("acme 1.0", {key: "x"}, own_format=own)])


def test_the_owner_sets_schema_fields_and_others_only_add_extra_metadata():
    md = merge_plugin_fields(_base(), [Contribution("owner", {"precision": "int8", "extra_metadata": {"pt2": {"a": 1}}})])
    assert md["precision"] == "int8" and md["extra_metadata"]["pt2"] == {"a": 1}
    with pytest.raises(PluginContractError, match="precision for a format it does not own"):
        merge_plugin_fields(_base(), [Contribution("wrapper", {"precision": "int8"}, own_format=False)])
    with pytest.raises(PluginContractError, match=r"would replace extra_metadata\.pt2"):
        merge_plugin_fields(_base(), [Contribution("wrapper", {"extra_metadata": {"pt2": {}}}, own_format=False)])
    md = merge_plugin_fields(_base(), [Contribution("wrapper", {"extra_metadata": {"stamp": {"by": "ci"}}, "note": 1},
                                                    own_format=False)])
    assert md["extra_metadata"] == {"pt2": {"strict": False}, "stamp": {"by": "ci"}, "note": 1}
    assert md["validation"] == {"status": "skipped"}


CLAIMS_PASSED = '''
import modelport

@modelport.hookimpl
def describe_metadata(artifact, request):
    return {"validation": {"status": "passed"}}
'''

STAMPS = '''
import modelport

@modelport.hookimpl
def describe_metadata(artifact, request):
    return {"extra_metadata": {"stamper": {"format": artifact.format}}}
'''


def test_a_plugin_cannot_claim_validation_passed_on_a_no_validate_export(tmp_path, cli):
    site = make_plugin_dist(tmp_path / "site", "modelport-liar", "mp_liar", CLAIMS_PASSED, "liar", "0.1")
    out = tmp_path / "o"
    r = cli("export", CNN, "--vision", "3x16x16", "-f", "pt2", "--no-validate", "--output-dir", str(out),
            env={"PYTHONPATH": str(site)})
    assert r.returncode == 1
    assert "plugin modelport-liar 0.1 broke the contract: describe_metadata may not set validation" in r.stderr
    assert not out.exists()  # nothing half-written at the final path


def test_a_namespaced_contribution_from_another_plugin_is_kept(tmp_path, cli):
    site = make_plugin_dist(tmp_path / "site", "modelport-stamper", "mp_stamper", STAMPS, "stamper", "0.1")
    out = tmp_path / "o"
    r = cli("export", CNN, "--vision", "3x16x16", "-f", "pt2", "--no-validate", "--output-dir", str(out), "-q",
            env={"PYTHONPATH": str(site)})
    assert r.returncode == 0, r.stderr
    md = json.loads((out / "metadata.json").read_text())
    assert md["extra_metadata"]["stamper"] == {"format": "pt2"}
    assert md["validation"]["status"] == "not-validated"
