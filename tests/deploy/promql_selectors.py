"""The vector selectors and grouping labels of a PromQL expression, for the consistency test.

Not a PromQL parser: a tokenizer that knows which identifiers are functions, keywords and label
lists, which is all the rules and the dashboard use. An expression it cannot read makes the
test fail (it never silently skips one).
"""
import re

TOKEN = re.compile(r'''
   (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  |(?P<braces>\{(?:"(?:\\.|[^"\\])*"|[^}"])*\})
  |(?P<range>\[[^\]]*\])
  |(?P<duration>\d+(?:ms|[smhdwy])\b)
  |(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  |(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  |(?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>(),=])
  |(?P<ws>\s+)
''', re.X)

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right"}
# Aggregations may be followed by `by (...)` before their parenthesis: never metric names here.
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:\\.|[^"\\])*")\s*,?')


def tokens(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot read PromQL at {expr[pos:pos + 30]!r} in {expr!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def matchers(braces):
    body, found, pos = braces[1:-1], [], 0
    while pos < len(body):
        m = MATCHER.match(body, pos)
        if not m:
            if body[pos:].strip():
                raise ValueError(f"cannot read matchers {braces!r}")
            break
        found.append((m.group(1), m.group(2), m.group(3)))
        pos = m.end()
    return found


def analyse(expr):
    """Returns (selectors, grouping_labels): selectors as (metric name, [(label, op, "value")],
    text of the selector), grouping labels as a set of names from by/without/on/... lists."""
    toks = tokens(expr)
    selectors, grouping = [], set()
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else (None, None)
        if kind == "ident" and text in LABEL_LISTS:
            if nxt[1] != "(":
                raise ValueError(f"expected a label list after {text} in {expr!r}")
            i += 2
            while toks[i][1] != ")":
                if toks[i][0] == "ident":
                    grouping.add(toks[i][1])
                i += 1
            i += 1
            continue
        if kind == "ident" and text == "offset":
            i += 2  # the duration
            continue
        if kind == "ident" and text not in KEYWORDS and text not in AGGREGATIONS and nxt[1] != "(":
            ms = matchers(nxt[1]) if nxt[0] == "braces" else []
            selector = text + (nxt[1] if nxt[0] == "braces" else "")
            selectors.append((text, ms, selector))
            i += 2 if nxt[0] == "braces" else 1
            continue
        if kind == "braces":
            raise ValueError(f"selector without a metric name in {expr!r}")
        i += 1
    return selectors, grouping
