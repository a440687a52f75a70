"""Inputs that stalled or exhausted afctl before issue 14, kept as fixtures: each must now end
quickly with afctl's own error (or a correct answer), in bounded memory."""

CATASTROPHIC_REGEX = "^(a+)+$"
"""Exponential backtracking in Python's re: hours on REDOS_TEXT."""
REDOS_TEXT = "a" * 32 + "!"

TEMPLATE_BOMBS = {
    "nested loops printing nothing": (
        "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}"
    ),
    "nested loops filtering everything": (
        "{% for a in range(99999) %}{% for b in range(99999) if false %}{% endfor %}{% endfor %}"
    ),
    "ljust of 4 GB": "{{ 'x'.ljust(4000000000)|length }}",
    "percent width": "{{ '%999999999d' % 1 }}",
    "percent star width": "{{ '%*d' % (999999999, 1) }}",
    "format width": "{{ '{:>999999999}'.format(1) }}",
    "format nested width": "{{ '{:>{w}}'.format(1, w=999999999) }}",
    "format filter width": "{{ '%999999999d'|format(1) }}",
    "doubling by ~": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}"
    ),
    "doubling by +": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}{{ ns.s|length }}"
    ),
    "nested shared literals": (
        "{% set a = ['x'*100000] %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}"
        "{% set c = [b,b,b,b,b,b,b,b,b,b] %}{{ c|string|length }}"
    ),
    "replace filter growth": "{{ ('x'*100000)|replace('x', 'x'*100000)|length }}",
    "replace method growth": "{{ ('x'*100000).replace('x', 'x'*100000)|length }}",
    "join of shared strings": "{{ ([('x'*100000)]*100000)|join }}",
    "center": "{{ 'x'|center(999999999)|length }}",
    "indent": "{{ ('a\\n'*100000)|indent(1000)|length }}",
    "expandtabs": "{{ '\\t'.expandtabs(999999999) }}",
    "multiply": "{{ 'x' * 10**9 }}",
}

EXPRESSION_BOMBS = [
    "str([[1]*100000]*100000)",
    "[[1]*100000]*100000 == [[1]*100000]*100000",
    "len([[[1]*1000]*1000]*1000)",
    "[[1]*1000]*1000 + [[1]*1000]*1000",
]
