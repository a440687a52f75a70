"""Offline replay: recorded runs reproduce, and a changed agent is caught at its first
divergence."""

from __future__ import annotations

import json
import tempfile
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afctl.context import Context
from afctl.testing import invoke, write_repo

TOOLS_PY = '''
import asyncio


def word_count(text: str) -> int:
    """Count words.

    Args:
        text: The text.
    """
    return len(text.split())


async def shout(text: str) -> str:
    """Shout a text.

    Args:
        text: The text.
    """
    await asyncio.sleep(0)
    return text.upper()
'''


def tool(name: str) -> str:
    return (
        f"apiVersion: afctl/v1\nkind: Tool\nmetadata: {{name: {name}}}\n"
        f"spec: {{type: python, entrypoint: 'helpers.tools:{name}'}}\n"
    )


def agent(name: str, other: str, instructions: str = "Help.", tools: str = "[word_count, shout]"):
    return (
        f"apiVersion: afctl/v1\nkind: Agent\nmetadata: {{name: {name}}}\n"
        f"spec: {{model: script, instructions: '{instructions} I am {name}.', tools: {tools}, "
        f"handoffs: [{other}], limits: {{max_turns: 12}}}}\n"
    )


def repo_for(root: Path, rules: str, **first: str) -> Path:
    body = textwrap.indent(textwrap.dedent(rules).strip(), "      ")
    return write_repo(
        root,
        {
            ".afctl/.gitignore": "*\n",
            "helpers/__init__.py": "",
            "helpers/tools.py": TOOLS_PY,
            "tools.yaml": tool("word_count") + "---\n" + tool("shout"),
            "model.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: script}\n"
                f"spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n{body}\n"
            ),
            "agents.yaml": agent("alpha", "beta", **first) + "---\n" + agent("beta", "alpha"),
        },
    )


calls = st.lists(
    st.tuples(
        st.sampled_from(["word_count", "shout"]), st.text("abc xyz", min_size=1, max_size=12)
    ),
    min_size=1,
    max_size=3,
)
turns = st.lists(st.one_of(st.just("handoff"), calls), max_size=5)


def script_for(plan: list) -> str:  # type: ignore[type-arg]
    rules = []
    holder = {"alpha": "beta", "beta": "alpha"}
    current = "alpha"
    for number, step in enumerate(plan, start=1):
        if step == "handoff":
            target = holder[current]
            rules.append(
                f"- turn: {number}\n  tool_calls: [{{name: transfer_to_{target}, arguments: {{}}}}]"
            )
            current = target
        else:
            listed = ", ".join(
                f"{{name: {name}, arguments: {{text: {json.dumps(text)}}}}}" for name, text in step
            )
            rules.append(f"- turn: {number}\n  tool_calls: [{listed}]")
    rules.append(f"- turn: {len(plan) + 1}\n  reply: 'done after {{{{ tool_result }}}}'")
    return "\n".join(rules)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(turns)
def test_an_offline_replay_always_reproduces(plan):
    with tempfile.TemporaryDirectory() as folder:
        repo = repo_for(Path(folder), script_for(plan))
        context = Context(workspace=repo / ".afctl")
        result = context.run("agent/alpha", "go", paths=[str(repo)])
        assert result.ok, result.error
        before = len(context.runs(limit=100))
        report = context.replay(result.run_id)
        assert report.reproduced, report.divergence
        assert report.output == result.output
        assert report.steps == 1 + len(plan) + sum(len(s) for s in plan if s != "handoff")
        assert len(context.runs(limit=100)) == before  # replay writes nothing to the log


RULES = """
- turn: 1
  tool_calls: [{name: word_count, arguments: {text: "a b c"}}]
- turn: 2
  reply: "counted {{ tool_result }}"
"""


def test_changed_instructions_diverge_at_the_first_model_call(tmp_path):
    repo = repo_for(tmp_path, RULES)
    context = Context(workspace=repo / ".afctl")
    result = context.run("agent/alpha", "go", paths=[str(repo)])
    assert context.replay(result.run_id, revision="current", paths=[str(repo)]).reproduced
    repo_for(tmp_path, RULES, instructions="Be terse.")
    report = context.replay(result.run_id, revision="current", paths=[str(repo)])
    assert not report.reproduced and report.divergence is not None
    assert (report.divergence.step, report.divergence.turn) == (1, 1)
    assert report.divergence.what == "the instructions (system message) differ"
    assert report.divergence.expected == "Help. I am alpha."
    assert report.divergence.actual == "Be terse. I am alpha."
    assert context.replay(result.run_id).reproduced  # the recorded revision still does


def test_a_changed_tool_list_diverges(tmp_path):
    repo = repo_for(tmp_path, RULES)
    context = Context(workspace=repo / ".afctl")
    result = context.run("agent/alpha", "go", paths=[str(repo)])
    repo_for(tmp_path, RULES, tools="[word_count]")
    report = context.replay(result.run_id, revision="current", paths=[str(repo)])
    assert report.divergence is not None
    assert report.divergence.what == "the tools offered differ"
    assert report.divergence.expected == ["shout", "transfer_to_beta", "word_count"]
    assert report.divergence.actual == ["transfer_to_beta", "word_count"]


def test_live_tools_show_a_changed_tool_result(tmp_path):
    repo = repo_for(tmp_path, RULES)
    context = Context(workspace=repo / ".afctl")
    result = context.run("agent/alpha", "go", paths=[str(repo)])
    assert context.replay(result.run_id, live_tools=True).reproduced
    (repo / "helpers/tools.py").write_text(TOOLS_PY.replace("len(text.split())", "len(text)"))
    import importlib

    import helpers.tools  # type: ignore[import-not-found]

    importlib.reload(helpers.tools)
    from afctl.tools import registry

    registry._built.clear()  # the process caches built tools; a new process would not
    report = context.replay(result.run_id, live_tools=True)
    assert report.divergence is not None and report.divergence.turn == 2
    assert report.divergence.what == "message 4 of the conversation differs"
    assert report.divergence.expected["content"] == "3"
    assert report.divergence.actual["content"] == "5"
    assert context.replay(result.run_id).reproduced  # from the log, the tool is not called


def test_the_cli_exits_5_on_a_divergence(tmp_path):
    repo = repo_for(tmp_path, RULES)
    invoke(["run", "-f", ".", "agent/alpha", "go"], cwd=repo)
    run_id = json.loads(invoke(["runs", "-o", "json"], cwd=repo).stdout)[0]["id"]
    same = invoke(["replay", run_id[:14]], cwd=repo)
    assert same.exit_code == 0 and "reproduced (3 steps" in same.stdout
    repo_for(tmp_path, RULES, instructions="Be terse.")
    changed = invoke(["replay", run_id, "--revision", "current", "-f", "."], cwd=repo)
    assert changed.exit_code == 5
    assert "diverged at step 1 (turn 1): the instructions (system message) differ" in changed.stdout
    data = json.loads(invoke(["replay", run_id, "-o", "json"], cwd=repo).stdout)
    assert data["reproduced"] is True and data["divergence"] is None


def test_a_live_replay_is_a_new_tagged_run_with_a_step_aligned_diff(tmp_path):
    repo = repo_for(tmp_path, RULES)
    context = Context(workspace=repo / ".afctl")
    original = context.run("agent/alpha", "go", paths=[str(repo)])
    again, diff = context.replay_live(original.run_id)
    assert again.ok and again.run_id != original.run_id
    assert diff.identical_trajectory and diff.tools_a == diff.tools_b == ["word_count"]
    with context.prompt_log() as log:
        record = log.run(again.run_id)
    assert record.replay_of == original.run_id and record.is_replay == 1
    assert context.stats().records()[0]["runs"] == 1  # replays stay out of the totals
    assert context.stats(include_replays=True).records()[0]["runs"] == 2
    echoed, diff = context.replay_live(original.run_id, model="local/echo", params={"seed": 1})
    assert echoed.output == "go" and not diff.same_output
    assert diff.tools_a == ["word_count"] and diff.tools_b == []
    assert diff.output_diff == ["-counted", "-3", "+go"]
    assert diff.deltas["model"] == {"a": "local/scripted", "b": "local/echo"}
    assert diff.deltas["turns"] == {"a": 2, "b": 1, "change": -1}


def test_diff_runs_compares_any_two_runs(tmp_path):
    repo = repo_for(tmp_path, RULES)
    invoke(["run", "-f", ".", "agent/alpha", "go"], cwd=repo)
    repo_for(
        tmp_path,
        RULES.replace('text: "a b c"', 'text: "a b c d"').replace("counted", "now counted"),
    )
    invoke(["run", "-f", ".", "agent/alpha", "go"], cwd=repo)
    runs = [r["id"] for r in json.loads(invoke(["runs", "-o", "json"], cwd=repo).stdout)]
    shown = invoke(["diff-runs", runs[1], runs[0]], cwd=repo)
    assert shown.exit_code == 2  # diff's convention: 2 when the runs differ
    assert "output: +now counted -3 +4" in shown.stdout
    assert 'call 1 word_count: {"text": "a b c"} → {"text": "a b c d"}' in shown.stdout
    data = json.loads(invoke(["diff-runs", runs[1], runs[0], "-o", "json"], cwd=repo).stdout)
    assert data["identical_trajectory"] is False and data["argument_changes"][0]["step"] == 1
    same = invoke(["diff-runs", runs[0], runs[0]], cwd=repo)
    assert same.exit_code == 0 and "the same run" in same.stdout
    live = invoke(["replay", runs[0][:14], "--live", "--model", "local/echo"], cwd=repo)
    assert live.exit_code == 0 and "model: local/scripted → local/echo" in live.stdout
    refused = invoke(["replay", runs[0], "--model", "local/echo"], cwd=repo)
    assert refused.exit_code == 64 and "need --live" in refused.stderr


def test_diff_runs_shows_inputs_params_and_workflow_steps(tmp_path):
    """Issue 15 #15."""
    repo = repo_for(tmp_path, RULES)
    first = Context(workspace=repo).run("agent/alpha", "go", paths=[str(repo)])
    second = Context(workspace=repo).run("agent/alpha", "go on", paths=[str(repo)])
    diff = Context(workspace=repo).diff_runs(first.run_id, second.run_id)
    assert diff.inputs is not None and diff.inputs["b"]["input"] == "go on"
    shown = invoke(["diff-runs", first.run_id, second.run_id], cwd=repo)
    assert shown.exit_code == 2 and "input: go → go on" in shown.stdout
    _, live = Context(workspace=repo).replay_live(first.run_id, params={"temperature": 0.9})
    assert live.params is not None and live.params["b"][0]["temperature"] == 0.9
    assert live.identical_trajectory and not live.identical
