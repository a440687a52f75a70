from __future__ import annotations

import asyncio
import dataclasses
import enum
from pathlib import Path
from typing import Literal, TypedDict

import pytest

import afctl
from afctl.errors import RunError
from afctl.safety.paths import PathRefused, inside
from afctl.testing import write_repo
from afctl.tools.base import Validator, result_text
from afctl.tools.builtin import BuiltinFileTool
from afctl.tools.python_tool import PythonTool, import_entrypoint, infer_spec, parse_docstring


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


@dataclasses.dataclass
class Address:
    street: str
    number: int = 1


class Filters(TypedDict):
    tag: str


def search(
    query: str,
    limit: int = 5,
    exact: bool = False,
    size: Size | None = None,
    mode: Literal["fast", "deep"] = "fast",
    tags: list[str] | None = None,
    address: Address | None = None,
    filters: Filters | None = None,
    weights: dict[str, float] | None = None,
) -> list[str]:
    """Search the catalogue.

    Returns matching titles, best first.

    Args:
        query: What to look for,
            in plain words.
        limit: How many results.
        exact (bool): Match the whole query.
    """
    return [query] * limit


def test_schemas_are_inferred_from_hints_and_docstrings():
    description, schema = infer_spec(search, "search")
    assert description == "Search the catalogue."
    properties = schema["properties"]
    assert schema["required"] == ["query"]
    assert properties["query"] == {
        "type": "string",
        "description": "What to look for, in plain words.",
    }
    assert properties["limit"] == {
        "type": "integer",
        "description": "How many results.",
        "default": 5,
    }
    assert properties["exact"]["type"] == "boolean"
    assert properties["size"] == {"enum": ["s", "l"]}
    assert properties["mode"] == {"enum": ["fast", "deep"], "default": "fast"}
    assert properties["tags"] == {"type": "array", "items": {"type": "string"}}
    assert properties["address"]["required"] == ["street"]
    assert properties["filters"] == {
        "type": "object",
        "properties": {"tag": {"type": "string"}},
        "required": ["tag"],
    }
    assert properties["weights"] == {"type": "object", "additionalProperties": {"type": "number"}}


def test_the_decorator_overrides_name_and_description():
    @afctl.tool(description="Adds numbers.")
    def add(a: int, b: int) -> int:
        return a + b

    tool = PythonTool("add", add, None, None, None)
    assert tool.spec.description == "Adds numbers."
    assert asyncio.run(tool.call({"a": 2, "b": 3})) == 5


def test_docstrings_without_sections():
    assert parse_docstring("One line.") == ("One line.", {})
    assert parse_docstring(None) == ("", {})


def test_async_tools_are_awaited():
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert asyncio.run(PythonTool("double", double, None, None, None).call({"x": 4})) == 8


def test_entrypoints_import_from_the_root(tmp_path):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "mod.py").write_text("def f():\n    return 1\n")
    assert import_entrypoint("mypkg.mod:f", tmp_path)() == 1
    with pytest.raises(RunError, match=r"cannot import mypkg\.mod:missing"):
        import_entrypoint("mypkg.mod:missing", tmp_path)
    with pytest.raises(RunError, match=r"cannot import nowhere\.mod:f"):
        import_entrypoint("nowhere.mod:f", tmp_path)


def test_argument_validation_and_results():
    validator = Validator(
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    )
    assert validator.problems({"n": 1}) == []
    assert "n" in validator.problems({"n": "x"})[0]
    assert validator.problems({})
    assert result_text({"a": 1}) == '{"a": 1}' and result_text("plain") == "plain"


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../secret.txt", "a/../../x", "a\x00b", "link/outside.txt", "C:/Windows"],
)
def test_file_tools_refuse_paths_outside_their_root(tmp_path, path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "outside.txt").write_text("secret")
    (root / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(PathRefused):
        inside(root, path)
    tool = BuiltinFileTool("read_file", "read_file", root)
    with pytest.raises(PathRefused):
        asyncio.run(tool.call({"path": path}))


def test_file_tools_work_inside_their_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    write = BuiltinFileTool("write_file", "write_file", root)
    read = BuiltinFileTool("read_file", "read_file", root)
    listing = BuiltinFileTool("list_dir", "list_dir", root, max_bytes=10)
    assert (
        asyncio.run(write.call({"path": "notes/a.txt", "content": "hello"}))
        == "wrote 5 bytes to notes/a.txt"
    )
    assert asyncio.run(read.call({"path": "notes/a.txt"})) == "hello"
    assert asyncio.run(listing.call({})) == ["notes/"]
    assert asyncio.run(listing.call({"path": "notes"})) == ["a.txt"]
    small = BuiltinFileTool("write_file", "write_file", root, max_bytes=3)
    with pytest.raises(RunError, match="larger than 3 bytes"):
        asyncio.run(small.call({"path": "b.txt", "content": "hello"}))
    (root / "bin.dat").write_bytes(b"\xff\xfe")
    with pytest.raises(RunError, match="not UTF-8"):
        asyncio.run(read.call({"path": "bin.dat"}))
    assert inside(root, ".") == root.resolve()
    assert isinstance(inside(root, "notes/a.txt"), Path)


def test_two_repositories_in_one_process_each_get_their_own_package(tmp_path):
    from afctl.tools.python_tool import import_entrypoint

    roots = []
    for name in ("first", "second"):
        roots.append(
            write_repo(
                tmp_path / name,
                {
                    "samepkg/__init__.py": "",
                    "samepkg/fns.py": f"def which():\n    return {name!r}\n",
                },
            )
        )
    for _ in range(2):  # back and forth: neither shadows the other
        assert [import_entrypoint("samepkg.fns:which", root)() for root in roots] == [
            "first",
            "second",
        ]
