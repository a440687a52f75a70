"""An eval's results as one self-contained HTML page: inline CSS, SVG charts and a little
script, nothing fetched from anywhere (it opens from a CI artifact, offline, in any browser).

Per suite: the verdict and thresholds, pass rate per variant (with 95% Wilson intervals when
cases repeat), a latency histogram, cost per variant, regressions and fixes against a
baseline, and every case with its output, its assertions and its run id (`afctl runs show`,
`afctl replay`). Built from the versioned JSON (`afctl.eval/v1`), so a stored result renders
the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from afctl.pricing import usd

_CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--ink:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;
color:var(--ink);margin:0;padding:24px 32px;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid
var(--line);padding-bottom:4px}h3{font-size:15px;margin:20px 0 6px}
.muted{color:var(--muted)}.pass{color:var(--ok);font-weight:600}.fail,.error{color:var(--bad);
font-weight:600}.error{font-style:italic}.badge{display:inline-block;padding:2px 10px;
border-radius:12px;color:#fff;font-weight:600}.badge.pass{background:var(--ok);color:#fff}.badge.fail{background:var(--bad);
color:#fff}table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;
padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}th{background:var(--bg)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.bar-row{display:grid;grid-template-columns:minmax(120px,40%) 1fr auto;gap:8px;align-items:center;
margin:3px 0;font-size:12px}.bar-label{overflow-wrap:anywhere}.bar-track{background:var(--bg);
height:16px;border-radius:2px}.bar{display:block;height:16px;border-radius:2px}
td.why{font-size:12px;color:var(--bad);overflow-wrap:anywhere}
pre{white-space:pre-wrap;word-break:break-word;background:var(--bg);padding:8px;margin:4px 0;
border-radius:6px;max-height:320px;overflow:auto}code{font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:24px}.chart{flex:1 1 340px}
.chart svg{width:100%;height:auto}details summary{cursor:pointer}
.controls{margin:10px 0;display:flex;gap:16px;align-items:center}
.controls input[type=search]{padding:4px 8px;width:260px}
tr.case.hidden,tr.detail.hidden{display:none}
"""

_SCRIPT = """
(function () {
  var search = document.getElementById('case-search');
  var failedOnly = document.getElementById('failed-only');
  function apply() {
    var text = search.value.toLowerCase();
    var rows = document.querySelectorAll('tr.case');
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var visible = row.getAttribute('data-key').indexOf(text) !== -1 &&
        (!failedOnly.checked || row.getAttribute('data-passed') === 'false');
      row.classList.toggle('hidden', !visible);
      var detail = document.getElementById(row.getAttribute('data-detail'));
      if (detail) { detail.classList.toggle('hidden', !visible); }
      if (visible) { shown++; }
    }
    document.getElementById('shown').textContent = shown + ' of ' + rows.length + ' shown';
  }
  search.addEventListener('input', apply);
  failedOnly.addEventListener('change', apply);
  if (window.location.hash.indexOf('#run-') === 0) {
    var target = document.getElementById(window.location.hash.slice(1));
    if (target && target.tagName === 'DETAILS') { target.open = true; }
  }
  apply();
  document.body.setAttribute('data-ready', 'true');
})();
"""


def render_html(evals: Sequence[dict[str, Any]]) -> str:
    """The report page of evals given as their JSON documents (`EvalResult.to_dict()`)."""
    passed = all(e["passed"] for e in evals)
    errored = any(e.get("verdict") == "error" for e in evals)
    verdict = "error" if errored else "pass" if passed else "fail"
    total = sum(len(e["cases"]) for e in evals)
    errors = sum(e.get("errors", 0) for e in evals)
    title = ", ".join(e["suite"] for e in evals)
    body = [
        f"<h1>afctl eval: {escape(title)}</h1>",
        f'<p><span class="badge {"pass" if passed else "fail"}">'
        f'{verdict.upper()}</span> <span class="muted">{len(evals)} suite(s), '
        f"{total} case runs" + (f", {errors} could not run" if errors else "") + "</span></p>",
        '<div class="controls"><input type="search" id="case-search" '
        'placeholder="filter cases by id, variant or run id" aria-label="filter cases">'
        '<label><input type="checkbox" id="failed-only"> failed only</label>'
        '<span id="shown" class="muted"></span></div>',
    ]
    for index, result in enumerate(evals):
        body.append(_suite(result, index))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>afctl eval: {escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}<script>{_SCRIPT}</script></body></html>\n"
    )


def _suite(result: dict[str, Any], index: int) -> str:
    cases = result["cases"]
    verdict = result.get("verdict") or ("pass" if result["passed"] else "fail")
    rows = [
        f'<h2>Suite {escape(result["suite"])} <span class="{verdict}">'
        f"{verdict.upper()}</span></h2>",
        f"<p>agent <code>{escape(result['agent'])}</code> · eval "
        f"<code>{escape(result['eval_id'])}</code> · {_pct(result['pass_rate'])} passed "
        f"(required {_pct(result['pass_rate_required'])}"
        + (
            f", every variant {_pct(result['variant_pass_rate_required'])}"
            if result.get("variant_pass_rate_required") is not None
            else ""
        )
        + ")"
        + (
            f" · <span class=fail>{result['errors']} could not run</span> (errors, not failures:"
            f" {_pct(result['error_rate'])}, allowed {_pct(result.get('max_error_rate', 0))})"
            if result.get("errors")
            else ""
        )
        + f" · {result['seconds']:.2f} s"
        + (_cache_line(result["cache"]) if result.get("cache") else "")
        + "</p>",
    ]
    variants = _variant_table(result)
    rows.append("<h3>Variants</h3>" + variants)
    rows.append(
        '<div class="charts">'
        f'<div class="chart"><h3>Pass rate per variant</h3>{_pass_chart(result)}</div>'
        f'<div class="chart"><h3>Latency</h3>{_latency_histogram(cases)}</div>'
        f'<div class="chart"><h3>Cost per variant</h3>{_cost_chart(result)}</div>'
        "</div>"
    )
    comparison = result.get("comparison")
    if comparison:
        listed = []
        for kind in ("regressions", "fixes"):
            entries = ", ".join(
                f"{escape(e['case'])} [{escape(e['variant'])}]" for e in comparison[kind]
            )
            listed.append(f"<li>{kind}: {entries or 'none'}</li>")
        rows.append(
            f"<h3>Against eval <code>{escape(comparison['baseline'])}</code></h3>"
            f"<ul>{''.join(listed)}</ul>"
        )
    rows.append("<h3>Cases</h3>" + _case_table(cases, index))
    return "<section>" + "".join(rows) + "</section>"


def _cache_line(cache: dict[str, Any]) -> str:
    return f" · cache {cache['hits']} hits, {cache['misses']} misses"


def _pct(rate: float) -> str:
    return f"{rate * 100:.0f}%"


def _by_variant(cases: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for case in cases:
        groups.setdefault(case["variant"], []).append(case)
    return groups


def _variant_table(result: dict[str, Any]) -> str:
    from afctl.eval.runner import percentile, wilson

    head = (
        "<tr><th>variant</th><th class=num>runs</th><th class=num>passed</th>"
        "<th class=num>pass rate</th><th class=num>95% interval</th><th class=num>p50 latency"
        "</th><th class=num>p95 latency</th><th class=num>cost</th><th class=num>cost per run"
        "</th></tr>"
    )
    rows = [head]
    for variant, cases in _by_variant(result["cases"]).items():
        passes = sum(c["passed"] for c in cases)
        low, high = wilson(passes, len(cases))
        latencies = [float(c["latency_ms"]) for c in cases]
        costs = [c["cost_usd"] for c in cases if c["cost_usd"] is not None]
        cost = usd(sum(costs)) if costs else "-"
        per_run = f"${sum(costs) / len(costs):.5f}" if costs else "-"
        rows.append(
            f"<tr><td><code>{escape(variant)}</code></td><td class=num>{len(cases)}</td>"
            f"<td class=num>{passes}</td><td class=num>{_pct(passes / len(cases))}</td>"
            f"<td class=num>{low:.2f}–{high:.2f}</td>"
            f"<td class=num>{percentile(latencies, 0.5) or 0:.0f} ms</td>"
            f"<td class=num>{percentile(latencies, 0.95) or 0:.0f} ms</td>"
            f"<td class=num>{cost}</td><td class=num>{per_run}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _bars(items: list[tuple[str, float, str]], maximum: float, colour: str) -> str:
    """A horizontal bar chart: (label, value, text shown at the bar's end). Labels are shown
    whole (they wrap): two variants must never look alike."""
    rows = []
    for label, value, text in items:
        share = 0.0 if maximum <= 0 else 100 * value / maximum
        rows.append(
            f'<div class="bar-row" title="{escape(label)}: {escape(text)}">'
            f'<span class="bar-label">{escape(label)}</span>'
            f'<span class="bar-track"><span class="bar" style="width:{share:.1f}%;'
            f'background:{colour}"></span></span><span class="bar-text">{escape(text)}</span></div>'
        )
    return f'<div class="bars" role="img">{"".join(rows)}</div>'


def _pass_chart(result: dict[str, Any]) -> str:
    items = [
        (variant, sum(c["passed"] for c in cases) / len(cases),
         _pct(sum(c["passed"] for c in cases) / len(cases)))
        for variant, cases in _by_variant(result["cases"]).items()
    ]  # fmt: skip
    return _bars(items, 1.0, "#1a7f37")


def _cost_chart(result: dict[str, Any]) -> str:
    items = []
    for variant, cases in _by_variant(result["cases"]).items():
        costs = [c["cost_usd"] for c in cases if c["cost_usd"] is not None]
        total = sum(costs)
        items.append((variant, total, usd(total) if costs else "no prices"))
    return _bars(items, max((value for _, value, _ in items), default=0.0), "#0969da")


def _latency_histogram(cases: list[dict[str, Any]], bins: int = 12) -> str:
    latencies = [float(c["latency_ms"]) for c in cases]
    if not latencies:
        return '<p class="muted">no cases</p>'
    low, high = min(latencies), max(latencies)
    span = (high - low) or 1.0
    counts = [0] * bins
    for value in latencies:
        counts[min(bins - 1, int((value - low) / span * bins))] += 1
    tallest = max(counts)
    width, height, left, bottom = 420, 170, 34, 30
    bar = (width - left - 6) / bins
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 4}" y2="{height - bottom}" '
        'stroke="#8c959f"/>',
        f'<text x="0" y="12" font-size="10">{tallest}</text>',
        f'<text x="0" y="{height - bottom}" font-size="10">0</text>',
    ]
    for index, count in enumerate(counts):
        bar_height = (height - bottom - 16) * count / tallest
        x = left + index * bar
        start = low + span * index / bins
        end = low + span * (index + 1) / bins
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{height - bottom - bar_height:.1f}" '
            f'width="{bar - 2:.1f}" height="{bar_height:.1f}" fill="#8250df">'
            f"<title>{start:.0f}–{end:.0f} ms: {count} runs</title></rect>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 10}" font-size="10">{low:.0f} ms</text>'
        f'<text x="{width - 4}" y="{height - 10}" font-size="10" text-anchor="end">'
        f"{high:.0f} ms</text></svg>"
    )
    return "".join(parts)


def _case_table(cases: list[dict[str, Any]], suite_index: int) -> str:
    rows = [
        "<table><tr><th>case</th><th>variant</th><th class=num>repeat</th><th>result</th>"
        "<th class=num>score</th><th class=num>latency</th><th class=num>cost</th><th>why</th>"
        "<th>run</th></tr>"
    ]
    for index, case in enumerate(cases):
        detail = f"detail-{suite_index}-{index}"
        verdict = case.get("outcome") or ("pass" if case["passed"] else "fail")
        key = " ".join([case["case_id"], case["variant"], case["run_id"]]).lower()
        cost = "-" if case["cost_usd"] is None else usd(case["cost_usd"])
        rows.append(
            f'<tr class="case" data-key="{escape(key)}" data-passed="{str(case["passed"]).lower()}"'
            f' data-detail="{detail}"><td>{escape(case["case_id"])}</td>'
            f"<td><code>{escape(case['variant'])}</code></td>"
            f"<td class=num>{case['repeat'] + 1}</td><td class={verdict}>{verdict}</td>"
            f"<td class=num>{case['score']:.2f}</td>"
            f"<td class=num>{float(case['latency_ms']):.0f} ms</td><td class=num>{cost}</td>"
            f'<td class="why">{escape(_why(case))}</td>'
            f'<td><a href="#run-{escape(case["run_id"])}"><code>{escape(case["run_id"])}</code>'
            "</a></td></tr>"
        )
        rows.append(f'<tr class="detail" id="{detail}"><td colspan="9">{_details(case)}</td></tr>')
    rows.append("</table>")
    return "".join(rows)


def _why(case: dict[str, Any]) -> str:
    """Why a case did not pass, in its row (not only inside the collapsed details)."""
    if case.get("passed"):
        return ""
    failed = [f"{a['name']}: {a.get('reason') or 'failed'}" for a in case["assertions"]
              if not a["passed"]]  # fmt: skip
    text = "; ".join(failed) or str(case.get("error") or f"status {case['status']}")
    return text if len(text) <= 240 else text[:239] + "…"


def _details(case: dict[str, Any]) -> str:
    checks = "".join(
        f"<li><span class={'pass' if a['passed'] else 'fail'}>"
        f"{'pass' if a['passed'] else 'fail'}</span> <code>{escape(a['name'])}</code>"
        + (f" (weight {a['weight']:g})" if a.get("weight", 1) != 1 else "")
        + (f": {escape(str(a['reason']))}" if a.get("reason") else "")
        + "</li>"
        for a in case["assertions"]
    )
    run_id = escape(case["run_id"])
    error = f"<p class=fail>{escape(str(case['error']))}</p>" if case.get("error") else ""
    output = case["output"]
    return (
        f'<details id="run-{run_id}"><summary>output, assertions and run '
        f"<code>{run_id}</code> ({escape(case['status'])})</summary>{error}"
        f"<pre>{escape(output) if output is not None else '(no output)'}</pre>"
        f"<ul>{checks or '<li class=muted>no assertions</li>'}</ul>"
        f'<p class="muted">afctl runs show {run_id} · afctl replay {run_id}</p></details>'
    )
