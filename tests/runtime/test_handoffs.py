"""Handoffs (`spec.handoffs`) and agents called as tools (`type: agent`): the conversation moves
to another agent inside the same run, or another agent runs as a child run; loops between
agents stop at the run's max_turns."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from afctl.context import Context
from afctl.testing import write_repo


def model(name: str, rules: str) -> str:
    body = textwrap.indent(textwrap.dedent(rules).strip(), "      ")
    return (
        f"apiVersion: afctl/v1\nkind: Model\nmetadata: {{name: {name}}}\n"
        f"spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n{body}\n"
    )


def agent(name: str, model_name: str, extra: str = "", description: str = "") -> str:
    about = f"\n  description: {description}" if description else ""
    return (
        f"apiVersion: afctl/v1\nkind: Agent\nmetadata:\n  name: {name}{about}\n"
        f"spec:\n  model: {model_name}\n  instructions: You are {name}.\n{extra}"
    )


def run(repo: Path, target: str, text: str):  # type: ignore[no-untyped-def]
    return Context(workspace=repo).run(target, text, paths=[str(repo)])


def steps(repo: Path, run_id: str):  # type: ignore[no-untyped-def]
    with Context(workspace=repo).prompt_log() as log:
        return list(log.events(run_id))


def test_a_handoff_moves_the_conversation_to_the_other_agent(tmp_path: Path) -> None:
    repo = write_repo(
        tmp_path,
        {
            "models.yaml": model(
                "triage-script",
                """
                - contains: refund
                  tool_calls: [{name: transfer_to_billing, arguments: {}}]
                """,
            )
            + "---\n"
            + model(
                "billing-script",
                """
                - after_tool: transfer_to_billing
                  reply: "Billing here: your refund for '{{ input }}' is on its way."
                """,
            ),
            "agents.yaml": agent("triage", "triage-script", "  handoffs: [billing]\n")
            + "---\n"
            + agent("billing", "billing-script", description="Refunds and invoices."),
        },
    )
    result = run(repo, "agent/triage", "I want a refund")
    assert result.ok, result.error
    assert result.output == "Billing here: your refund for 'I want a refund' is on its way."
    assert result.agent == "billing" and result.turns == 2 and result.tool_calls == 0
    first, handoff, second = steps(repo, result.run_id)
    assert (first.type, handoff.type, second.type) == ("model_call", "handoff", "model_call")
    assert handoff.payload == {"from": "triage", "to": "billing"}
    offered = first.payload["request"]["tools"]
    assert offered[0]["name"] == "transfer_to_billing"
    assert "Refunds and invoices." in offered[0]["description"]
    assert first.payload["agent"] == "triage" and second.payload["agent"] == "billing"
    request = second.payload["request"]
    assert request["messages"][0] == {"role": "system", "content": "You are billing."}
    assert request["messages"][-1]["content"] == "Transferred to billing."
    assert request["tools"] == []  # billing's own tools: none
    with Context(workspace=repo).prompt_log() as log:
        bundle = log.conn.execute("SELECT bundle FROM revisions").fetchone()[0]
    assert '"billing"' in bundle  # the revision covers the agent handed off to


def test_agents_handing_off_to_each_other_stop_at_max_turns(tmp_path: Path) -> None:
    repo = write_repo(
        tmp_path,
        {
            "models.yaml": model(
                "pp-script",
                """
                - after_tool: transfer_to_pong
                  tool_calls: [{name: transfer_to_ping, arguments: {}}]
                - after_tool: transfer_to_ping
                  tool_calls: [{name: transfer_to_pong, arguments: {}}]
                - contains: go
                  tool_calls: [{name: transfer_to_pong, arguments: {}}]
                """,
            ),
            "agents.yaml": agent(
                "ping", "pp-script", "  handoffs: [pong]\n  limits: {max_turns: 5}\n"
            )
            + "---\n"
            + agent("pong", "pp-script", "  handoffs: [ping]\n"),
        },
    )
    result = run(repo, "agent/ping", "go")
    assert result.status == "failed" and result.error_type == "limit"
    assert "max_turns=5" in (result.error or "")
    kinds = [e.type for e in steps(repo, result.run_id)]
    assert kinds.count("model_call") == 5 and kinds.count("handoff") == 5


def test_only_one_handoff_is_made_per_turn(tmp_path: Path) -> None:
    repo = write_repo(
        tmp_path,
        {
            "models.yaml": model(
                "desk-script",
                """
                - turn: 1
                  tool_calls:
                    - {name: transfer_to_sales, arguments: {}}
                    - {name: transfer_to_billing, arguments: {}}
                - turn: 2
                  reply: "{{ tool_result }}"
                """,
            ),
            "agents.yaml": agent("desk", "desk-script", "  handoffs: [sales, billing]\n")
            + "---\n"
            + agent("sales", "desk-script")
            + "---\n"
            + agent("billing", "desk-script"),
        },
    )
    result = run(repo, "agent/desk", "help")
    assert result.ok and result.agent == "sales"
    second = [e for e in steps(repo, result.run_id) if e.type == "model_call"][1]
    results = [m for m in second.payload["request"]["messages"] if m["role"] == "tool"]
    assert results[0]["content"] == "Transferred to sales."
    assert results[1]["is_error"] and "only one handoff per turn" in results[1]["content"]


EXPERT_TOOL = (
    "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: ask_expert}\n"
    "spec: {type: agent, agent: expert, input: 'Question from support: {{ args.input }}'}\n"
)


def test_an_agent_called_as_a_tool_runs_as_a_child_run(tmp_path: Path) -> None:
    repo = write_repo(
        tmp_path,
        {
            "ask_expert.yaml": EXPERT_TOOL,
            "models.yaml": model(
                "support-script",
                """
                - turn: 1
                  tool_calls: [{name: ask_expert, arguments: {input: "is 7 prime?"}}]
                - after_tool: ask_expert
                  reply: "The expert says: {{ tool_result }}"
                """,
            )
            + "---\n"
            + model(
                "expert-script",
                """
                - contains: prime
                  reply: "yes ({{ input }})"
                """,
            ),
            "agents.yaml": agent("support", "support-script", "  tools: [ask_expert]\n")
            + "---\n"
            + agent("expert", "expert-script"),
        },
    )
    result = run(repo, "agent/support", "ask the expert")
    assert result.ok, result.error
    assert result.output == "The expert says: yes (Question from support: is 7 prime?)"
    assert result.tool_calls == 1 and result.agent == "support"
    with Context(workspace=repo).prompt_log() as log:
        (child,) = [r for r in log.runs() if r.parent_id == result.run_id]
        assert child.agent == "expert" and child.status == "succeeded"
        assert log.payload(child.id)["input"] == "Question from support: is 7 prime?"


@pytest.mark.parametrize("max_turns", [1, 3, 6])
def test_an_agent_calling_itself_as_a_tool_is_bounded_by_the_run(
    tmp_path: Path, max_turns: int
) -> None:
    repo = write_repo(
        tmp_path,
        {
            "again.yaml": (
                "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: again}\n"
                "spec: {type: agent, agent: looper}\n"
            ),
            "models.yaml": model(
                "loop-script",
                """
                - contains: loop
                  tool_calls: [{name: again, arguments: {input: "loop"}}]
                - after_tool: again
                  reply: "gave up: {{ tool_result }}"
                """,
            ),
            "agents.yaml": agent(
                "looper", "loop-script", f"  tools: [again]\n  limits: {{max_turns: {max_turns}}}\n"
            ),
        },
    )
    result = run(repo, "agent/looper", "loop")
    with Context(workspace=repo).prompt_log() as log:
        runs = log.runs(limit=100)
        calls = sum(1 for r in runs for e in log.events(r.id) if e.type == "model_call")
    assert calls == max_turns  # every agent in the chain drew from one budget
    assert len(runs) == max_turns + 1  # the last child found the budget spent
    assert result.status == "failed" and result.error_type == "limit"
