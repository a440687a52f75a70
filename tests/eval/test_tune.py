"""`afctl tune`: strategies, ranking, budget and writing the winner back with comments kept."""

from __future__ import annotations

import json
from pathlib import Path

from afctl.context import Context
from afctl.fake_llm import Reply
from afctl.testing import invoke, write_repo

AGENT = """\
# the support agent: tuned by afctl tune
apiVersion: afctl/v1
kind: Agent
metadata: {name: bot}
spec:
  model: cheap   # the model we pay for
  instructions: |
    Help.
  params: {temperature: 0.1}
  tools:
    - lookup
"""


def tuning_repo(tmp_path: Path, url: str, cases: int = 4) -> Path:
    models = "".join(
        f"apiVersion: afctl/v1\nkind: Model\nmetadata: {{name: {name}}}\n"
        f"spec: {{provider: openai, model: {name}, base_url: '{url}/v1', api_key_env: TEST_KEY, "
        f"pricing: {{input_per_mtok: {price}, output_per_mtok: {price}}}}}\n---\n"
        for name, price in (("cheap", 1.0), ("dear", 50.0))
    )
    rows = "".join(f"    - {{id: c{i}, input: 'question {i}'}}\n" for i in range(cases))
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "shop/__init__.py": "",
            "shop/orders.py": "def lookup(order: str) -> str:\n    return order\n",
            "models.yaml": models + "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: lookup}\n"
            "spec: {type: python, entrypoint: 'shop.orders:lookup'}\n",
            "agent.yaml": AGENT,
            "evals/suite.yaml": (
                "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: tuning}\n"
                "spec:\n  target: {agent: bot}\n  concurrency: 4\n"
                "  defaults: {assert: [{type: contains, value: 'yes'}]}\n"
                f"  cases:\n{rows}"
            ),
        },
    )


def warm_answers(body):
    """The fake model says yes only when it is warm enough."""
    return Reply(text="yes" if float(body.get("temperature", 0)) >= 0.5 else "no")


def test_grid_ranks_by_pass_rate_then_cost(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    llm_server.responder = warm_answers
    repo = tuning_repo(tmp_path, llm_server.url)
    (report,) = Context(workspace=repo).tune(
        [str(repo)], ["model=dear,cheap", "temperature=0.2,0.7"]
    )
    ranking = [(s.candidate.id, s.pass_rate) for s in report.ranking]
    assert ranking[:2] == [
        ("model=cheap,temperature=0.7", 1.0),
        ("model=dear,temperature=0.7", 1.0),
    ]
    assert {r for _, r in ranking[2:]} == {0.0}
    assert report.winner is not None and report.winner.candidate.patch() == {
        "model": "cheap", "params": {"temperature": 0.7}
    }  # fmt: skip
    assert len(llm_server.requests) == 4 * 4  # every candidate on every case
    with Context(workspace=repo).prompt_log() as log:
        evals = log.conn.execute("SELECT count(*) FROM eval_records").fetchone()[0]
    assert evals == 4  # each candidate's evaluation is an eval in the log


def test_halving_drops_poor_candidates_early_and_finds_the_same_winner(
    tmp_path, llm_server, monkeypatch
):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    llm_server.responder = warm_answers
    repo = tuning_repo(tmp_path, llm_server.url, cases=8)
    temperatures = "temperature=0,0.1,0.2,0.3,0.4,0.5,0.6,0.7"
    (report,) = Context(workspace=repo).tune([str(repo)], [temperatures], strategy="halving")
    sizes = [(len(r), r[0].cases) for r in report.rounds]
    assert sizes == [(8, 2), (4, 4), (2, 8)]  # 8 on 2 cases, the best 4 on 4, the best 2 on 8
    # a grid asks 64 times; halving 48 runs, of which the cases a survivor already answered
    # come from the response cache: 16 + 4 x 2 + 2 x 4 requests
    assert len(llm_server.requests) == 32
    assert report.winner is not None and report.winner.pass_rate == 1.0
    assert report.winner.candidate.params["temperature"] >= 0.5


def test_a_budget_stops_starting_candidates_and_random_samples_are_seeded(
    tmp_path, llm_server, monkeypatch
):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    repo = tuning_repo(tmp_path, llm_server.url)
    (report,) = Context(workspace=repo).tune(
        [str(repo)], ["model=dear", "temperature=0,0.5,1"], budget_usd=0.000001
    )
    assert len(report.ranking) == 1 and len(report.skipped) == 2
    assert report.spent_usd is not None and report.spent_usd > 0.000001
    picks = [
        [s.candidate.id for s in Context(workspace=repo).tune(
            [str(repo)], ["temperature=0,0.1,0.2,0.3,0.4"], strategy="random", samples=2, seed=7
        )[0].rounds[0]]
        for _ in range(2)
    ]  # fmt: skip
    assert len(picks[0]) == 2 and sorted(picks[0]) == sorted(picks[1])


def test_write_applies_the_winner_and_keeps_comments_and_layout(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    llm_server.responder = warm_answers
    repo = tuning_repo(tmp_path, llm_server.url)
    variants = tmp_path.parent / f"{tmp_path.name}-instructions.yaml"  # not among manifests
    variants.write_text("- Be brief.\n- |\n  Be kind.\n  Answer yes or no.\n")
    result = invoke(
        ["tune", ".", "--param", "temperature=0.2,0.9", "--param",
         f"instructions=@{variants}", "--write"],
        cwd=repo,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "winner: temperature=0.9,instructions=#" in result.stdout
    text = (repo / "agent.yaml").read_text()
    assert text.startswith("# the support agent: tuned by afctl tune\n")
    assert "  model: cheap   # the model we pay for\n" in text
    assert "  params: {temperature: 0.9}\n" in text
    assert "  tools:\n    - lookup\n" in text  # the list keeps its indentation
    assert invoke(["validate", "-f", "."], cwd=repo).exit_code == 0
    # what the winner's instructions were is in the JSON report
    as_json = invoke(["tune", ".", "--param", "temperature=0.9", "-o", "json"], cwd=repo)
    (data,) = json.loads(as_json.stdout)
    assert data["schema"] == "afctl.tune/v1" and data["patch"] == {
        "spec": {"params": {"temperature": 0.9}}
    }


def test_bad_params_and_a_write_without_the_agent_file_are_refused(
    tmp_path, llm_server, monkeypatch
):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    repo = tuning_repo(tmp_path, llm_server.url)
    for params, message in (
        (["--param", "temperature"], "--param temperature: write name=value1,value2"),
        (["--param", "instructions=@missing.yaml"], "cannot read"),
        (["--param", "top_p=1", "--param", "top_p=0.5"], "--param top_p is given twice"),
    ):
        refused = invoke(["tune", ".", *params], cwd=repo)
        assert refused.exit_code == 64 and message in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    # the agent applied but not among the files: there is no file to write the winner to
    applied = invoke(["apply", "-f", "agent.yaml", "-f", "models.yaml", "--yes"], cwd=repo)
    assert applied.exit_code == 0, applied.output
    only_suite = invoke(["tune", "evals", "--param", "temperature=0", "--write"], cwd=repo)
    assert (
        only_suite.exit_code != 0
        and "agent/bot is not defined in the given files" in only_suite.stderr
    )
    assert len(llm_server.requests) == 0  # refused before any run
