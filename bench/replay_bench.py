"""Benchmark: offline replay of a 20-step run (10 model calls, 10 tool calls), engine time.

Records one run of a scripted agent, then replays it: the first replay in the process (with
afctl's lazy imports) and the median of the next ones. Target: <= 50 ms of engine time.

Usage: python bench/replay_bench.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

TOOLS_PY = '''
def word_count(text: str) -> int:
    """Count words.

    Args:
        text: The text.
    """
    return len(text.split())
'''


def main() -> None:
    from afctl.context import Context
    from afctl.testing import write_repo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    call = "{{name: word_count, arguments: {{text: 'step {} of the run'}}}}"
    rules = f"      - turn: 1\n        tool_calls: [{call.format(0)}, {call.format(1)}]\n"
    for turn in range(2, 10):
        rules += f"      - turn: {turn}\n        tool_calls: [{call.format(turn)}]\n"
    rules += "      - turn: 10\n        reply: 'counted {{ tool_result }}'\n"
    root = Path(tempfile.mkdtemp(prefix="afctl-replay-bench-"))
    try:
        repo = write_repo(
            root,
            {
                ".afctl/.gitignore": "*\n",
                "benchtools/__init__.py": "",
                "benchtools/text.py": TOOLS_PY,
                "all.yaml": (
                    "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: script}\n"
                    f"spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n{rules}"
                    "---\napiVersion: afctl/v1\nkind: Tool\nmetadata: {name: word_count}\n"
                    "spec: {type: python, entrypoint: 'benchtools.text:word_count'}\n---\n"
                    "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: counter}\n"
                    "spec: {model: script, instructions: Count., tools: [word_count], "
                    "limits: {max_turns: 20}}\n"
                ),
            },
        )
        context = Context(workspace=repo)
        result = context.run("agent/counter", "count", paths=[str(repo)])
        assert result.ok and result.turns == 10 and result.tool_calls == 10, result
        import json
        import subprocess
        import sys

        fresh = subprocess.run(
            [sys.executable, "-c", "from afctl.cli.main import main; main()",
             "replay", result.run_id, "-o", "json"],
            cwd=repo, capture_output=True, text=True, check=True,
        )  # fmt: skip
        cold = json.loads(fresh.stdout)
        assert cold["reproduced"], cold
        first = context.replay(result.run_id)
        assert first.reproduced, first.divergence
        warm = [context.replay(result.run_id).engine_ms for _ in range(args.repeat)]
        steps = first.steps
        print(f"a recorded run of {steps} steps ({result.turns} model calls, "
              f"{result.tool_calls} tool calls)")  # fmt: skip
        print(f"afctl replay, a new process : {cold['engine_ms']:6.1f} ms engine time")
        print(f"replay, median of {args.repeat:<10}: {statistics.median(warm):6.1f} ms engine time"
              "  (target <= 50 ms)")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
