"""Differential fuzzing of flowship's prefect.yaml loader against PyYAML (what `prefect deploy` reads with).

Usage: <python with PyYAML> ci/yaml-fuzz.py --seed N --count M > cases.jsonl

Writes one JSON object per line: {"doc": TEXT, "value": what yaml.safe_load gives (as JSON), "error": bool}.
The documents come from a grammar of what real prefect.yaml files contain: block and flow collections (flow
ones spread over lines, also back at their block's indentation), anchors, aliases and merge keys, YAML 1.1
scalars (yes/no/on/off, octal, sexagesimal, underscores, dates), quoted scalars with escapes, block scalars with
chomping indicators, comments and blank lines, plus random corruptions that must fail in both.
flowship's test (`yaml11::tests::differential_with_pyyaml`) loads each and expects the same value, or an error
where PyYAML errs.
"""
import argparse
import datetime
import json
import random
import sys

import yaml
from typing import Any

from pydantic import TypeAdapter

WORDS = ["name", "image", "tags", "work_pool", "job_variables", "env", "cron", "pull", "on", "off", "yes", "n",
         "entrypoint", "schedule", "x-1", "a b", "über", "key.with.dots", "0755", "null", "True"]
SCALARS = ["yes", "No", "ON", "off", "y", "true", "FALSE", "~", "null", "0755", "0x1F", "1_000", "-3", "+5",
           "1.5", ".5", "1e3", "1.0e+3", "6.8523015e+5", "190:20:30", "190:20:30.15", "2024-01-01",
           "2001-12-14 21:59:43.10", "0o17", "0b101", ".inf", "-.Inf", ".NaN", "12:30", "1:2:3:4", "3.",
           "etl", "flows/etl.py:etl", "0 3 * * *", "Europe/Berlin", "PT1H", "a:b", "x-y", "-dash", "http://x/y",
           "prefect.deployments.steps.git_clone"]
QUOTED = ["it's", "tab\there", "é", "\\", "\"q\"", "a # not a comment", "{{ prefect.variables.x }}", "", " lead",
          "multi\nline", "yes", "0755", "#hash", "[x]", "{y}", "null", "\u00e9\u4e2d"]


class Gen:
    def __init__(self, rng):
        self.r = rng
        self.anchors = []
        self.made = 0

    def key(self):
        k = self.r.choice(WORDS)
        if self.r.random() < 0.15:
            return json.dumps(k)
        if self.r.random() < 0.05:
            return "'" + k.replace("'", "''") + "'"
        return k if (k[0].isalpha() or k[0] in "_x") and ":" not in k and " " not in k else json.dumps(k)

    def scalar(self):
        p = self.r.random()
        if p < 0.55:
            return self.r.choice(SCALARS)
        if p < 0.75:
            return json.dumps(self.r.choice(QUOTED), ensure_ascii=self.r.random() < 0.5)
        if p < 0.85:
            return "'" + self.r.choice(QUOTED).replace("\n", " ").replace("'", "''") + "'"
        return str(self.r.randint(-1000, 100000))

    def flow(self, depth, multiline, back):
        """A flow collection; `back` puts continuation lines at (or left of) the block's indentation."""
        if depth > 2 or self.r.random() < 0.4:
            items = [self.scalar() for _ in range(self.r.randint(0, 3))]
            return "[" + ", ".join(items) + "]"
        pairs = []
        for _ in range(self.r.randint(0, 3)):
            v = self.scalar() if self.r.random() < 0.7 else self.flow(depth + 1, False, False)
            pairs.append(f"{self.key()}: {v}")
        if multiline and pairs:
            pad = "" if back else "    "
            return "{\n" + ",\n".join(pad + p for p in pairs) + "\n" + ("" if back else "  ") + "}"
        return "{" + ", ".join(pairs) + "}"

    def block_scalar(self, indent):
        ind = self.r.choice(["|", ">", "|-", ">+", "|+", ">-"])
        lines = [self.r.choice(["echo hi", "  indented", "", "a: b", "# not comment", "{x}"]) for _ in range(3)]
        return ind + "\n" + "".join((" " * (indent + 2) + l if l else "") + "\n" for l in lines).rstrip("\n")

    def node(self, indent, depth):
        p = self.r.random()
        anchor = ""
        if self.r.random() < 0.1:
            name = f"a{self.made}"
            self.made += 1
            anchor = f"&{name} "
        if self.anchors and p < 0.08:
            return " *" + self.r.choice(self.anchors)[0], False
        if depth > 3 or p < 0.4:
            text, block = " " + anchor + self.scalar(), False
        elif p < 0.5:
            text, block = " " + anchor + self.flow(0, self.r.random() < 0.5, self.r.random() < 0.5), False
        elif p < 0.55:
            text, block = " " + anchor + self.block_scalar(indent), False
        elif p < 0.8:
            text, block = (" " + anchor).rstrip() + "\n" + self.mapping(indent + 2, depth + 1), "map"
        else:
            # (A sequence is never a merge source here: PyYAML 6 merges a list of mappings by comparing key
            # objects by identity, so its result depends on CPython's string interning. flowship follows the
            # merge spec: earlier mappings win. README: "YAML differences".)
            seq = self.sequence(indent + self.r.choice([0, 2]), depth + 1)
            text, block = (" " + anchor).rstrip() + "\n" + seq, "seq"
        if anchor:
            self.anchors.append((anchor.strip()[1:], block))
        return text, block

    def mapping(self, indent, depth):
        lines = []
        mappings = [a for a, kind in self.anchors if kind == "map"]
        if mappings and self.r.random() < 0.3:
            lines.append(" " * indent + "<<: *" + self.r.choice(mappings))
        used = set()
        for _ in range(self.r.randint(1, 4)):
            text, _ = self.node(indent, depth)
            key = self.key()
            # Keys unique per mapping: PyYAML's merge of duplicate keys depends on string interning (it
            # compares key objects by id), which no other implementation can reproduce.
            resolved = repr(yaml.safe_load(key + ": 0").popitem()[0])
            if resolved in used:
                continue
            used.add(resolved)
            line = " " * indent + key + ":" + text
            if self.r.random() < 0.1:
                line += "  # comment"
            lines.append(line)
            if self.r.random() < 0.05:
                lines.append("")
        return "\n".join(lines)

    def sequence(self, indent, depth):
        lines = []
        for _ in range(self.r.randint(1, 3)):
            if self.r.random() < 0.5:
                m = self.mapping(indent + 2, depth + 1)
                lines.append(" " * indent + "- " + m[indent + 2:])
            else:
                text, block = self.node(indent, depth)
                lines.append(" " * indent + "-" + (text if not block else text))
        return "\n".join(lines)


def corrupt(rng, doc):
    """Something PyYAML may refuse: a tab indent, an unclosed bracket, a bad alias, a stray colon."""
    edits = [lambda d: d.replace("  ", "\t", 1), lambda d: d + "\nx: [1, 2", lambda d: d + "\ny: *nope",
             lambda d: d + "\n  bad: indent: here", lambda d: "- a\nb: c\n" + d, lambda d: d.replace(":", "", 1),
             lambda d: d + "\nz: =", lambda d: d + "\nw: <<",
             lambda d: d + "\ndup: 1\ndup: 2"]
    return rng.choice(edits)(doc)


def jsonable(v):
    if isinstance(v, dict):
        out = {key_str(k): jsonable(x) for k, x in v.items()}
        if len(out) != len(v):
            raise ValueError("keys that are equal as JSON strings (None and 'null')")
        return out
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, (datetime.datetime, datetime.date)):
        # As Prefect sends it: pydantic's JSON form (the file goes through `model_dump(mode="json")`).
        return TypeAdapter(Any).dump_python(v, mode="json")
    if isinstance(v, bytes):
        raise ValueError("binary")
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        raise ValueError("non-finite float")
    return v


def key_str(k):
    if isinstance(k, str):
        return k
    if isinstance(k, (dict, list, tuple)):
        raise ValueError("complex key")
    j = jsonable(k)
    return j if isinstance(j, str) else json.dumps(j)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=500)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    written = 0
    while written < a.count:
        g = Gen(rng)
        doc = g.mapping(0, 0) + "\n"
        if rng.random() < 0.15:
            doc = corrupt(rng, doc)
        try:
            value, error = jsonable(yaml.safe_load(doc)), False
        except yaml.YAMLError:
            value, error = None, True
        except (ValueError, RecursionError, TypeError):
            continue  # values JSON cannot hold (NaN, binary, complex keys): not comparable, skipped
        print(json.dumps({"doc": doc, "value": value, "error": error}, ensure_ascii=False))
        written += 1


if __name__ == "__main__":
    sys.exit(main())
