"""Blueprints: lint, render, reproducible packing, and extraction that refuses every kind of
crafted archive without writing anything."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from afctl.blueprints.archive import (
    FORMAT,
    MANIFEST,
    ArchiveRefused,
    Limits,
    _checked_name,
    extract,
)
from afctl.blueprints.package import canonical
from afctl.context import Context
from afctl.errors import ManifestError, UsageError
from afctl.testing import invoke, write_repo

EXAMPLE = Path(__file__).parents[2] / "blueprints" / "support-desk"


def test_the_example_lints_clean_and_packs_to_the_same_bytes_twice(tmp_path):
    blueprint, problems = Context().blueprint_lint(EXAMPLE)
    assert problems == [] and blueprint.name == "support-desk"
    first, manifest = Context().blueprint_pack(EXAMPLE, tmp_path / "a.afbp")
    second, _ = Context().blueprint_pack(EXAMPLE, tmp_path / "b.afbp")
    assert first.read_bytes() == second.read_bytes()
    assert manifest["format"] == FORMAT and "tools/orders.py" in manifest["files"]
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    assert members[0].name == MANIFEST
    assert [m.name for m in members[1:]] == sorted(m.name for m in members[1:])
    assert {(m.mtime, m.uid, m.gid, m.uname, m.mode) for m in members} == {
        (315532800, 0, 0, "", 0o644)
    }
    folder, read = extract(first, tmp_path / "store")
    assert read == json.loads(canonical(manifest)) and (folder / "tools" / "orders.py").is_file()


def test_render_takes_defaults_then_files_then_sets_and_checks_the_schema(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("company: FromFile\nrefund_limit: 300\n")
    _, rendered = Context().blueprint_render(EXAMPLE, ["refund_limit=500"], [str(values)])
    text = "\n".join(r.text for r in rendered)
    assert "FromFile support desk" in text and "REFUND-OVER-500" in text  # --set wins
    with pytest.raises(UsageError, match="do not fit its parameters"):
        Context().blueprint_render(EXAMPLE, ["refund_limit=lots"])
    cli = invoke(["blueprint", "render", str(EXAMPLE), "--set", "company=Globex"])
    assert cli.exit_code == 0 and "# Source: manifests/agents.yaml" in cli.stdout
    assert "Globex" in cli.stdout


def test_lint_names_each_problem(tmp_path):
    folder = write_repo(
        tmp_path / "bad",
        {
            "blueprint.yaml": (
                "apiVersion: afctl/v1\nkind: Blueprint\nmetadata: {name: bad}\n"
                "spec:\n  version: 0.1.0\n  parameters:\n    type: object\n"
                "    properties: {who: {type: string, default: x}}\n"
            ),
            "manifests/agent.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\n"
                "spec: {model: local/echo, instructions: '{{ params.nobody }}'}\n"
            ),
        },
    )
    _, problems = Context().blueprint_lint(folder)
    summaries = [p.summary for p in problems]
    assert "parameter who has no description" in summaries
    assert "there is no eval suite under evals/" in summaries
    assert any("cannot render" in s and "nobody" in s for s in summaries)
    failed = invoke(["blueprint", "lint", str(folder)])
    assert failed.exit_code == 3 and "manifests/agent.yaml" in failed.stdout
    with pytest.raises(ManifestError):
        Context().blueprint_pack(folder, tmp_path / "bad.afbp")
    assert not (tmp_path / "bad.afbp").exists()


# -- crafted archives --------------------------------------------------------------------------


def craft(
    path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], manifest: object = "auto"
) -> Path:
    """An archive with exactly these members; by default a MANIFEST.json that matches the
    regular files."""
    files = {m[0]: m[1] for m in members if isinstance(m, tuple)}
    if manifest == "auto":
        meta = {"name": "x", "version": "1.0.0"}
        manifest = {"format": FORMAT, "name": "x", "version": "1.0.0",
                    "metadata": {"sha256": hashlib.sha256(canonical(meta)).hexdigest(),
                                 "size": len(canonical(meta)), "content": meta},
                    "files": {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                              for n, d in files.items()}}  # fmt: skip
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb") as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        entries = list(members)
        if manifest is not None:
            entries.insert(0, (MANIFEST, json.dumps(manifest).encode()))
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    path.write_bytes(buffer.getvalue())
    return path


def special(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


CASES = {
    "traversal": ([("../evil.txt", b"x")], "climbs out"),
    "nested traversal": ([("manifests/../../evil.txt", b"x")], "climbs out"),
    "absolute": ([("/tmp/evil.txt", b"x")], "absolute path"),
    "windows absolute": ([("C:/evil.txt", b"x")], "absolute path"),
    "backslash": ([("..\\evil.txt", b"x")], "not a plain relative name"),
    "symlink": ([special("link", tarfile.SYMTYPE, "/etc/passwd")], "a symbolic link"),
    "hardlink": ([special("hard", tarfile.LNKTYPE, "blueprint.yaml")], "a hard link"),
    "device": ([special("dev", tarfile.CHRTYPE)], "a device file"),
    "fifo": ([special("pipe", tarfile.FIFOTYPE)], "a named pipe"),
    "duplicate": ([("a.txt", b"1"), ("a.txt", b"2")], "appears twice"),
    "case collision": ([("Readme.md", b"1"), ("README.md", b"2")], "only in case"),
}


def assert_nothing_written(parent: Path, around: Path, before: set[str]) -> None:
    assert not parent.exists()  # checks come before any folder is made
    assert {p.name for p in around.iterdir()} == before


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_archives_are_refused_and_nothing_is_written(tmp_path, case):
    members, message = CASES[case]
    archive = craft(tmp_path / "evil.afbp", members)
    before = {p.name for p in tmp_path.iterdir()}
    parent = tmp_path / "store"
    with pytest.raises(ArchiveRefused, match=message):
        extract(archive, parent)
    assert_nothing_written(parent, tmp_path, before)
    assert not (tmp_path.parent / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()


def test_size_total_and_ratio_caps(tmp_path):
    cases = [
        ([("big.bin", os.urandom(1001))], Limits(max_file=1000), "over 1000 bytes"),
        ([("a.bin", os.urandom(800)), ("b.bin", os.urandom(800))], Limits(max_total=1500),
         "over 1500 bytes"),
        ([("zeros.bin", bytes(200_000))], Limits(max_ratio=50), "over 50x its size"),
    ]  # fmt: skip
    for members, limits, message in cases:
        archive = craft(tmp_path / "cap.afbp", members)
        with pytest.raises(ArchiveRefused, match=message):
            extract(archive, tmp_path / "store", limits)
        assert not (tmp_path / "store").exists()


def test_a_wrong_checksum_or_a_tampered_manifest_is_refused(tmp_path):
    good = {"format": FORMAT, "name": "x", "version": "1", "files": {}, "metadata": {}}
    body = b"print('hi')\n"
    digest = hashlib.sha256(body).hexdigest()
    meta = {"name": "x"}
    metadata = {
        "sha256": hashlib.sha256(canonical(meta)).hexdigest(),
        "size": len(canonical(meta)),
        "content": meta,
    }
    cases = [
        ({**good, "metadata": metadata, "files": {"tool.py": {"sha256": "0" * 64, "size": len(body)}}}, "checksum"),
        ({**good, "metadata": metadata, "files": {"tool.py": {"sha256": digest, "size": len(body)},
                                                  "gone.py": {"sha256": digest, "size": 1}}}, "missing: gone.py"),
        ({**good, "metadata": metadata, "files": {}}, "not listed: tool.py"),
        ({**good, "metadata": {**metadata, "content": {"name": "y"}},
          "files": {"tool.py": {"sha256": digest, "size": len(body)}}}, "metadata does not match"),
        ({"format": "something/else", "files": {}, "metadata": {}}, "format"),
        (None, "no MANIFEST.json"),
    ]  # fmt: skip
    for manifest, message in cases:
        archive = craft(tmp_path / "t.afbp", [("tool.py", body)], manifest=manifest)
        with pytest.raises(ArchiveRefused, match=message):
            extract(archive, tmp_path / "store")
    (tmp_path / "junk.afbp").write_bytes(b"not a tarball at all")
    with pytest.raises(ArchiveRefused, match="not a readable blueprint archive"):
        extract(tmp_path / "junk.afbp", tmp_path / "store")
    assert not (tmp_path / "store").exists()  # refused before any folder was made
    refused = invoke(["blueprint", "render", str(tmp_path / "t.afbp")])
    assert refused.exit_code == 64 and "no MANIFEST.json" in refused.stderr
    assert "Traceback" not in refused.stderr


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "/", "\\", ":", "C:", "\x00", "é"]),
                max_size=8).map("/".join))  # fmt: skip
def test_member_names_are_refused_or_stay_inside(name):
    try:
        clean = _checked_name(name, Limits())
    except ArchiveRefused:
        return
    root = PurePosixPath("/store")
    joined = PurePosixPath(os.path.normpath(root / clean))
    assert joined.is_relative_to(root) and joined != root


def materialize(folder: Path, target: Path, sets: list[str] | None = None) -> Path:
    """A blueprint rendered into a plain repository: its rendered manifests, tools, knowledge
    and evals (what an install will put in place)."""
    import shutil

    blueprint, rendered = Context().blueprint_render(folder, sets or [])
    for relative in blueprint.files():
        if not relative.startswith("manifests/") and relative != "blueprint.yaml":
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / relative, target / relative)
    for item in rendered:
        (target / item.path).parent.mkdir(parents=True, exist_ok=True)
        (target / item.path).write_text(item.text)
    (target / ".afctl").mkdir(exist_ok=True)
    return target


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLE.parent.iterdir() if p.is_dir()))
def test_every_example_blueprint_lints_and_passes_its_evals_offline(tmp_path, name):
    folder = EXAMPLE.parent / name
    _, problems = Context().blueprint_lint(folder)
    assert problems == []
    repo = materialize(folder, tmp_path / name)
    results = Context(workspace=repo).evaluate([str(repo)])
    assert results and all(r.passed for r in results), [
        (c.case_id, [a.reason for a in c.assertions if not a.passed], c.error)
        for r in results
        for c in r.cases
        if not c.passed
    ]


def test_create_gives_a_blueprint_that_lints_clean_and_passes_its_evals(tmp_path):
    """Issue 15: `afctl blueprint create NAME`; an author may be a string."""
    made = invoke(["blueprint", "create", "my-desk", "--dir", str(tmp_path)])
    assert made.exit_code == 0, made.output
    folder = tmp_path / "my-desk"
    assert "author: Your name <you@example.com>" in (folder / "blueprint.yaml").read_text()
    assert invoke(["blueprint", "lint", str(folder), "--strict"]).exit_code == 0
    repo = materialize(folder, tmp_path / "repo")
    results = Context(workspace=repo).evaluate([str(repo)])
    assert results and all(r.passed for r in results)
    again = invoke(["blueprint", "create", "my-desk", "--dir", str(tmp_path)])
    assert again.exit_code == 64 and "exists already" in again.stderr
    assert invoke(["blueprint", "create", "Bad Name", "--dir", str(tmp_path)]).exit_code == 64


def test_missing_descriptions_and_evals_warn_and_fail_only_with_strict(tmp_path):
    folder = write_repo(
        tmp_path / "bp",
        {
            "blueprint.yaml": (
                "apiVersion: afctl/v1\nkind: Blueprint\nmetadata: {name: bp}\n"
                "spec:\n  version: 0.1.0\n  parameters:\n    type: object\n"
                "    properties: {who: {type: string, default: x}}\n"
            ),
            "manifests/agent.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\n"
                "spec: {model: local/echo, instructions: 'Hi {{ params.who }}'}\n"
            ),
        },
    )
    relaxed = invoke(["blueprint", "lint", str(folder)])
    assert relaxed.exit_code == 0 and "2 warning(s)" in relaxed.stdout
    assert "parameter who has no description" in relaxed.stdout
    assert invoke(["blueprint", "lint", str(folder), "--strict"]).exit_code == 3
    assert (
        invoke(["blueprint", "pack", str(folder), "-o", str(tmp_path / "bp.afbp")]).exit_code == 0
    )
