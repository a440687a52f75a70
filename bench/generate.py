"""Generate a realistic repository of N valid, cross-referencing manifests for benchmarks."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

AGENT = """\
# yaml-language-server: $schema=../.schemas/agent.json
apiVersion: afctl/v1
kind: Agent
metadata:
  name: agent-{i}
  labels: {{team: team-{team}, tier: "{tier}"}}
  description: Answers questions for team {team}
spec:
  model: {model}
  instructions: |
    You help customers of {{{{ vars.company }}}} with topic {i}.
    Be brief and polite; escalate billing questions.
  vars: {{company: Acme {team}}}
  tools: [tool-{tool_a}, tool-{tool_b}, builtin/read_file]
  knowledge: [kb-{kb}]
  handoffs: [agent-{handoff}]
  guardrails:
    input:
      - {{type: max_length, max: 4000}}
      - {{type: deny_regex, pattern: "(?i)ignore (all )?previous instructions"}}
    output:
      - {{type: pii, action: redact}}
  memory: {{type: session, max_messages: 40}}
  limits: {{max_turns: 8, timeout_s: 120, max_cost_usd: 0.20}}
  params: {{temperature: 0.2, max_tokens: 800}}
"""

TOOL = """\
apiVersion: afctl/v1
kind: Tool
metadata:
  name: tool-{i}
  description: Look up record {i}
spec:
  type: python
  entrypoint: tools.records:lookup_{i}
  parameters:
    type: object
    required: [record_id]
    properties:
      record_id: {{type: string, description: The record to look up}}
  approval: {{when: "args.record_id == '0'"}}
  timeout_s: 10
"""

HTTP_TOOL = """\
apiVersion: afctl/v1
kind: Tool
metadata:
  name: tool-{i}
spec:
  type: http
  method: GET
  url: "https://api.example.com/items/{{{{ args.id }}}}"
  headers: {{Authorization: "Bearer ${{env:API_TOKEN}}"}}
  extract: /data
"""

WORKFLOW = """\
apiVersion: afctl/v1
kind: Workflow
metadata:
  name: flow-{i}
spec:
  inputs:
    type: object
    required: [ticket]
    properties: {{ticket: {{type: string}}}}
  steps:
    - id: classify
      agent: agent-{a}
      input: "{{{{ inputs.ticket }}}}"
    - id: act
      tool: tool-{t}
      needs: [classify]
      when: "steps.classify.output != ''"
      input: {{record_id: "{{{{ steps.classify.output }}}}"}}
      retry: {{attempts: 3, backoff_s: 1}}
  outputs:
    result: "{{{{ steps.act.output }}}}"
"""

MODEL = """\
apiVersion: afctl/v1
kind: Model
metadata:
  name: model-{i}
spec:
  provider: openai
  model: gpt-4.1-mini
  api_key_env: OPENAI_API_KEY
  params: {{temperature: 0.3}}
  pricing: {{input_per_mtok: 0.4, output_per_mtok: 1.6}}
"""

KNOWLEDGE = """\
apiVersion: afctl/v1
kind: KnowledgePack
metadata:
  name: kb-{i}
spec:
  sources: [{{path: "docs/kb-{i}/**/*.md"}}]
  chunking: {{strategy: markdown, size: 800, overlap: 100}}
"""

EVAL = """\
apiVersion: afctl/v1
kind: EvalSuite
metadata:
  name: eval-{i}
spec:
  target: {{agent: agent-{a}}}
  matrix: {{model: [openai/gpt-4.1-mini, anthropic/claude-haiku-4-5], temperature: [0, 0.7]}}
  defaults: {{assert: [{{type: latency, max_ms: 8000}}]}}
  cases:
    - input: "where is order {i}?"
      assert:
        - {{type: contains, value: shipped}}
        - {{type: tool_called, name: tool-{t}, args: {{record_id: "{i}"}}}}
  repeat: 3
  thresholds: {{pass_rate: 0.9}}
"""


def generate(root: Path, count: int, seed: int = 7) -> Path:
    """Write `count` manifests (one per file) under `root`, replacing what was there."""
    rng = random.Random(seed)
    if root.exists():
        shutil.rmtree(root)
    shares = {"agent": 0.35, "tool": 0.3, "workflow": 0.12, "model": 0.03, "kb": 0.05, "eval": 0.15}
    sizes = {kind: max(1, int(count * share)) for kind, share in shares.items()}
    sizes["agent"] += count - sum(sizes.values())
    folders = {
        "agent": "agents",
        "tool": "tools",
        "workflow": "workflows",
        "model": "models",
        "kb": "knowledge",
        "eval": "evals",
    }
    for folder in folders.values():
        (root / folder).mkdir(parents=True)

    def pick(kind: str) -> int:
        return rng.randrange(sizes[kind])

    for i in range(sizes["agent"]):
        model = rng.choice(["openai/gpt-4.1-mini", "anthropic/claude-haiku-4-5", "local/echo"])
        if rng.random() < 0.3:
            model = f"model-{pick('model')}"
        text = AGENT.format(
            i=i,
            team=i % 17,
            tier=i % 3,
            model=model,
            tool_a=(tool := pick("tool")),
            tool_b=(tool + 1) % sizes["tool"],
            kb=pick("kb"),
            handoff=pick("agent"),
        )
        (root / "agents" / f"agent-{i}.yaml").write_text(text)
    for i in range(sizes["tool"]):
        template = HTTP_TOOL if i % 5 == 0 else TOOL
        (root / "tools" / f"tool-{i}.yaml").write_text(template.format(i=i))
    for i in range(sizes["workflow"]):
        text = WORKFLOW.format(i=i, a=pick("agent"), t=pick("tool"))
        (root / "workflows" / f"flow-{i}.yaml").write_text(text)
    for i in range(sizes["model"]):
        (root / "models" / f"model-{i}.yaml").write_text(MODEL.format(i=i))
    for i in range(sizes["kb"]):
        (root / "knowledge" / f"kb-{i}.yaml").write_text(KNOWLEDGE.format(i=i))
    for i in range(sizes["eval"]):
        text = EVAL.format(i=i, a=pick("agent"), t=pick("tool"))
        (root / "evals" / f"eval-{i}.yaml").write_text(text)
    return root
