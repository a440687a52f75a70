"""Hostile blueprint archives, as a red team built them (issue 14): each is refused with one
short message before any path is built from what it says, and nothing is written anywhere."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from afctl.blueprints.archive import FORMAT, MANIFEST, ArchiveRefused, Limits, extract, inspect
from afctl.blueprints.package import canonical
from afctl.errors import UsageError
from afctl.testing import invoke, write_repo
from tests.blueprints.test_install import state, store_listing, workspace

BLUEPRINT = (
    "apiVersion: afctl/v1\nkind: Blueprint\nmetadata: {name: NAME, description: d}\n"
    "spec:\n  version: VERSION\n  parameters: {type: object, properties: {}}\n"
    "  requires: REQUIRES\n"
)
AGENT = (
    "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: NAME-agent}\n"
    "spec: {model: local/echo, instructions: Hi.}\n"
)


def archive(
    path: Path,
    *,
    name: str = "evil",
    version: str = "1.0.0",
    manifest_name: Any = None,
    manifest_version: Any = None,
    extra: dict[str, bytes] | None = None,
    requires: list[dict[str, str]] | None = None,
    manifest: Any = "auto",
) -> Path:
    """A blueprint archive whose MANIFEST.json says what the attacker wants (by default, what
    blueprint.yaml says), with checksums that match, so only the identity checks can refuse it."""
    files = {
        "blueprint.yaml": BLUEPRINT.replace("NAME", name)
        .replace("VERSION", version)
        .replace("REQUIRES", json.dumps(requires or []))
        .encode(),
        "manifests/agent.yaml": AGENT.replace("NAME", name).encode(),
        **(extra or {}),
    }
    claimed_name = name if manifest_name is None else manifest_name
    claimed_version = version if manifest_version is None else manifest_version
    meta = {"name": claimed_name, "version": claimed_version, "requires": requires or []}
    if manifest == "auto":
        manifest = {
            "format": FORMAT,
            "name": claimed_name,
            "version": claimed_version,
            "metadata": {
                "sha256": hashlib.sha256(canonical(meta)).hexdigest(),
                "size": len(canonical(meta)),
                "content": meta,
            },
            "files": {
                n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                for n, d in files.items()
            },
        }
    raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb") as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member, data in [(MANIFEST, raw), *files.items()]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return path


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if ".afctl" not in p.parts}


@pytest.mark.parametrize(
    ("manifest_name", "manifest_version", "message"),
    [
        ("evil", "../../../.github/workflows", "not a semantic version"),
        ("/tmp/afctl-evil", "1.0.0", "not a plain name"),
        ("../../../../x", "1.0.0", "not a plain name"),
        ("evil", "1.0.0/../../x", "not a semantic version"),
    ],
)
def test_a_manifest_naming_a_path_is_refused_before_anything_is_placed(
    tmp_path, manifest_name, manifest_version, message
):
    repo = workspace(tmp_path)
    before, files = state(repo), snapshot(repo)
    bad = archive(
        tmp_path / "x.afbp",
        manifest_name=manifest_name,
        manifest_version=manifest_version,
        extra={"evil.yml": b"on: push\njobs: {own: {runs-on: x, steps: [{run: id}]}}\n"},
    )
    result = invoke(["blueprint", "install", str(bad), "--yes"], cwd=repo)
    assert result.exit_code == 64 and message in result.stderr, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert state(repo) == before and snapshot(repo) == files
    assert store_listing(repo) == []
    assert not (repo / ".github").exists() and not Path("/tmp/afctl-evil").exists()
    assert not (tmp_path / "x").exists()


def test_a_manifest_that_differs_from_blueprint_yaml_is_refused_before_the_apply(tmp_path):
    repo = workspace(tmp_path)
    before = state(repo)
    bad = archive(tmp_path / "x.afbp", name="evil", manifest_name="other")
    result = invoke(["blueprint", "install", str(bad), "--yes"], cwd=repo)
    assert result.exit_code == 64 and "blueprint.yaml says 'evil'" in result.stderr
    assert state(repo) == before and store_listing(repo) == []  # no orphan store folder


def test_publish_refuses_an_absolute_name_and_writes_nothing_outside(tmp_path):
    registry = tmp_path / "registry"
    registry.mkdir()
    bad = archive(tmp_path / "x.afbp", manifest_name=str(tmp_path / "outside" / "evil"))
    result = invoke(["blueprint", "publish", str(bad), "--registry", str(registry)])
    assert result.exit_code == 64 and "not a plain name" in result.stderr
    assert list(registry.iterdir()) == [] and not (tmp_path / "outside").exists()


def test_an_index_naming_a_file_outside_the_registry_is_refused(tmp_path):
    repo = workspace(tmp_path)
    registry = tmp_path / "registry"
    (tmp_path / "secret.afbp").write_bytes(b"x")
    index = {"format": "afctl.registry/v1", "blueprints": {"evil": {"versions": {
        "1.0.0": {"file": "../secret.afbp", "digest": hashlib.sha256(b"x").hexdigest()}}}}}  # fmt: skip
    write_repo(registry, {"index.json": json.dumps(index)})
    assert invoke(["registry", "add", "r", str(registry)], cwd=repo).exit_code == 0
    result = invoke(["blueprint", "install", "evil", "--yes"], cwd=repo)
    assert result.exit_code == 64 and "not a plain .afbp file name" in result.stderr


def test_cyclic_requires_are_refused(tmp_path):
    repo = workspace(tmp_path)
    registry = tmp_path / "registry"
    a = archive(tmp_path / "a.afbp", name="a", requires=[{"name": "b", "version": "*"}])
    b = archive(tmp_path / "b.afbp", name="b", requires=[{"name": "a", "version": "*"}])
    for item in (a, b):
        assert (
            invoke(["blueprint", "publish", str(item), "--registry", str(registry)]).exit_code == 0
        )
    assert invoke(["registry", "add", "r", str(registry)], cwd=repo).exit_code == 0
    result = invoke(["blueprint", "install", "a", "--yes"], cwd=repo)
    assert result.exit_code == 64 and "a cycle: a -> b -> a" in result.stderr, result.output
    assert store_listing(repo) == []  # the registry is named in the committed afctl.lock


def long_header_archive(path: Path, kind: bytes, size: int) -> Path:
    """A tar stream whose first header announces a PAX or GNU long-name record of `size`
    bytes (zeros: it compresses to almost nothing)."""
    header = bytearray(512)
    header[0:12] = b"././@LongLink"[:12]
    header[100:108] = b"0000644\x00"
    header[124:136] = f"{size:011o}\x00".encode()
    header[156:157] = kind
    header[257:263] = b"ustar\x00"
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\x00 ".encode()
    with gzip.open(path, "wb") as out:
        out.write(bytes(header))
        chunk = b"a" * (1 << 20)
        for _ in range(size // len(chunk)):
            out.write(chunk)
        out.write(bytes(1024))
    return path


@pytest.mark.parametrize("kind", [b"x", b"L"])
def test_a_huge_long_name_header_is_refused_before_tarfile_reads_it(tmp_path, kind):
    bad = long_header_archive(tmp_path / "long.afbp", kind, 300 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveRefused) as refused:
            inspect(bad)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "(at most 65536)" in str(refused.value) and len(str(refused.value)) < 400
    assert peak < 16 * 1024 * 1024  # the header is never held in memory


@pytest.mark.parametrize(
    ("members", "manifest", "message"),
    [
        ({"a": b"1", "a/b": b"2"}, "auto", "'a' is a file, not a folder"),
        ({}, b"[" * 200_000 + b"]" * 200_000, "is not a blueprint manifest"),
        ({}, {"format": FORMAT, "files": {}, "metadata": "x"}, "is not a blueprint manifest"),
    ],
)
def test_hostile_layouts_get_a_clear_refusal(tmp_path, members, manifest, message):
    bad = archive(tmp_path / "x.afbp", extra=members, manifest=manifest)
    with pytest.raises(ArchiveRefused, match=message):  # (the nesting compresses 1000:1)
        extract(bad, tmp_path / "store", Limits(max_ratio=10_000))
    assert not (tmp_path / "store").exists()
    result = invoke(["blueprint", "render", str(bad)])
    assert result.exit_code == 64 and "internal error" not in result.output


def test_requires_that_are_not_a_list_of_names_are_refused(tmp_path):
    from afctl.blueprints.install import requirements

    bad = archive(tmp_path / "x.afbp")
    manifest, _ = inspect(bad)
    for hostile in ([{"name": ["x"]}], ["a"], [{"name": "../x"}], [{"name": "a", "version": 1}]):
        manifest["metadata"]["content"]["requires"] = hostile
        with pytest.raises(UsageError, match="give each requirement a name"):
            requirements(manifest, bad)
