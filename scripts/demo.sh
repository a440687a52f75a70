#!/usr/bin/env bash
# The main job end to end with embedded defaults: no API key, no network.
# Runs in ./demo (recreated each time), using the afctl installed in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
AFCTL="$PWD/.venv/bin/afctl"
DEMO="$PWD/demo"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

rm -rf "$DEMO"
step afctl init demo
"$AFCTL" init "$DEMO"
cd "$DEMO"

step afctl validate -f .
"$AFCTL" validate -f .

step afctl explain Agent.spec
"$AFCTL" explain Agent.spec

step "afctl validate -f broken.yaml   # a manifest with mistakes: every problem, one pass, exit 3"
cat > broken.yaml <<'YAML'
apiVersion: afctl/v1
kind: Agent
metadata:
  name: helper
spec:
  model: local/echo
  instuctions: "You help with {{ vars.topic }"
  tools: [word_cont]
  limits: {max_turns: "eight"}
YAML
set +e
"$AFCTL" validate -f . -f broken.yaml
code=$?
set -e
rm broken.yaml
echo "(exit code $code)"
[ "$code" -eq 3 ]

printf '\n\033[1mDemo finished.\033[0m The example repository is in ./demo\n'
