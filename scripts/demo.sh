#!/usr/bin/env bash
# The main job end to end with embedded defaults: no API key, no network.
# Runs in ./demo (recreated each time), using the afctl installed in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
AFCTL="$PWD/.venv/bin/afctl"
DEMO="$PWD/demo"
BLUEPRINTS="$PWD/blueprints"

# bold headings on a terminal only (NO_COLOR, or output to a pipe or file: plain text)
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then BOLD=$'\033[1m'; PLAIN=$'\033[0m'; else BOLD=""; PLAIN=""; fi
[ -t 1 ] || export NO_COLOR=1
step() { printf '\n%s$ %s%s\n' "$BOLD" "$*" "$PLAIN"; }

rm -rf "$DEMO"
step afctl init demo
"$AFCTL" init "$DEMO"
cd "$DEMO"

step afctl validate -f .
"$AFCTL" validate -f .

step afctl explain Agent.spec
"$AFCTL" explain Agent.spec

step "afctl validate -f .    # after adding agents/helper.yaml, which has a typo: exit 3"
cat > agents/helper.yaml <<'YAML'
apiVersion: afctl/v1
kind: Agent
metadata:
  name: helper
spec:
  model: local/echo
  instuctions: "You help"
YAML
set +e
"$AFCTL" validate -f .
code=$?
set -e
rm agents/helper.yaml
echo "(exit code $code)"
[ "$code" -eq 3 ]

step afctl plan -f .
"$AFCTL" plan -f .

step afctl apply -f . --yes
"$AFCTL" apply -f . --yes

step afctl get all
"$AFCTL" get all

step afctl describe agent/assistant
"$AFCTL" describe agent/assistant

step "# change the tool's timeout, add a description, and remove the workflow"
sed -i 's/timeout_s: 5/timeout_s: 9\n  description: Counts words/' tools/word_count.yaml
rm workflows/summarize.yaml

step afctl plan -f . --prune
"$AFCTL" plan -f . --prune

step "afctl diff -f . --prune    # exit 2: something differs"
set +e
"$AFCTL" diff -f . --prune
code=$?
set -e
echo "(exit code $code)"
[ "$code" -eq 2 ]

step afctl apply -f . --prune --yes
"$AFCTL" apply -f . --prune --yes

step afctl history tool/word_count
"$AFCTL" history tool/word_count

step 'afctl run agent/counter "count the words in this sentence please"    # python tool, offline scripted model'
"$AFCTL" run agent/counter "count the words in this sentence please"

step 'afctl run agent/assistant "Where is order 123?"    # local/echo'
"$AFCTL" run agent/assistant "Where is order 123?"

step 'afctl run agent/desk "How do I get a refund?"    # searches the docs knowledge pack'
"$AFCTL" run agent/desk "How do I get a refund?"

step 'afctl run agent/desk "count the words of: to be or not to be"    # hands off to counter'
"$AFCTL" run agent/desk "count the words of: to be or not to be"

step 'afctl run workflow/ticket --input text="I was charged twice, please refund"    # triage, order lookups, reply'
"$AFCTL" run workflow/ticket --input text="I was charged twice, please refund"

step "afctl triggers    # what afctl serve would run"
"$AFCTL" triggers

step afctl runs
"$AFCTL" runs

desk_run="$("$AFCTL" runs --agent desk -n 1 -o json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')"
step "afctl runs show $desk_run    # the desk run that handed off"
"$AFCTL" runs show "$desk_run"

step "afctl replay $desk_run    # offline: every response and tool result from the prompt log"
"$AFCTL" replay "$desk_run"

step "afctl replay $desk_run --live --model local/echo    # for real, on another model, then a diff"
"$AFCTL" replay "$desk_run" --live --model local/echo

step "afctl stats --by agent,model"
"$AFCTL" stats --by agent,model

step "afctl eval evals/ --json eval.json --junit junit.xml --html report.html    # offline"
"$AFCTL" eval evals/ --json eval.json --junit junit.xml --html report.html

step "afctl eval evals/ --explain-cache    # again: every answer comes from the response cache"
"$AFCTL" eval evals/ --explain-cache

step "afctl blueprint pack + publish    # the support-desk blueprint into a local registry"
"$AFCTL" blueprint pack "$BLUEPRINTS/support-desk" -o support-desk-1.0.0.afbp
"$AFCTL" registry add local ./registry
"$AFCTL" blueprint publish support-desk-1.0.0.afbp --registry local

step "afctl blueprint install support-desk --set company=Demo --trust --yes"
"$AFCTL" blueprint install support-desk --set company=Demo --trust --yes

step "afctl eval .afctl/blueprints/support-desk/1.0.0/evals    # the checks it ships with"
"$AFCTL" eval .afctl/blueprints/support-desk/1.0.0/evals

step "afctl usage --by blueprint,agent"
"$AFCTL" usage --by blueprint,agent

printf '\n%sDemo finished.%s The example repository is in ./demo; next, try:\n' "$BOLD" "$PLAIN"
cat <<EOF
  cd demo
  $AFCTL runs show $desk_run          # a transcript, with tool calls and costs
  $AFCTL eval evals/ --html report.html   # then open demo/report.html
  $AFCTL stats --by agent,model
  $AFCTL explain Agent.spec.tools
  edit agents/*.yaml, then: $AFCTL plan -f . && $AFCTL apply -f . --yes
EOF
