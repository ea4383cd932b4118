#!/usr/bin/python3
"""Check schemas/runbook.schema.json against the fixtures, and the engine against both.

usage: /usr/bin/python3 tests/schema/check.py RBK_BINARY

- the schema itself is a valid draft 2020-12 schema;
- runbooks/*.yaml and tests/fixtures/valid/*.yaml pass it;
- tests/fixtures/invalid/*.yaml fail or pass it as their first line says:
  `# schema: invalid` must fail, `# schema: valid` must pass (the mistake is
  one only the engine can see), `# schema: skip` is not given to the schema
  (YAML syntax error, duplicate key);
- `RBK_BINARY validate FILE` exits 0 for every valid fixture and 2 for every
  invalid one.

Prints `ok <what>` or `FAIL <what>: <reason>` per check; exits 1 if any failed.
Needs Debian's python3-jsonschema and python3-yaml (the system python).
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = "schemas/runbook.schema.json"
MARKERS = ("invalid", "valid", "skip")
failures = 0


def report(ok, what, reason=""):
    global failures
    if ok:
        print(f"ok {what}" + (f" ({reason})" if reason else ""))
    else:
        failures += 1
        print(f"FAIL {what}: {reason}")


class Loader(yaml.SafeLoader):
    """YAML 1.2-like scalars, as the engine reads them: no timestamps, and
    only true/false are booleans (not yes/no/on/off)."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers
            if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                             re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def schema_errors(validator, path):
    """The schema's complaints about the file, as 'where: message' strings."""
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=Loader)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def marker(path):
    with open(path, encoding="utf-8") as f:
        m = re.fullmatch(r"# schema: (\w+)\n", f.readline())
    return m.group(1) if m else None


def rbk_validate(rbk, path, home):
    """Exit status of `rbk validate path`, with the fixture's folder as the runbook path."""
    env = dict(os.environ, RBK_PATH=os.path.dirname(path), RBK_HOME=home)
    try:
        done = subprocess.run([rbk, "validate", path], env=env, cwd=ROOT, timeout=60,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        return None, str(e)
    except subprocess.TimeoutExpired:
        return None, "timed out after 60 s"
    return done.returncode, (done.stderr.strip().splitlines() or [""])[0]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    rbk = os.path.abspath(sys.argv[1])
    os.chdir(ROOT)

    try:
        with open(SCHEMA, encoding="utf-8") as f:
            schema = json.load(f)
        Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, SchemaError) as e:
        report(False, f"{SCHEMA} is a draft 2020-12 schema", str(e).splitlines()[0])
        return 1
    report(True, f"{SCHEMA} is a draft 2020-12 schema")
    validator = Draft202012Validator(schema)

    valid = sorted(glob.glob("runbooks/*.yaml")) + sorted(glob.glob("tests/fixtures/valid/*.yaml"))
    invalid = sorted(glob.glob("tests/fixtures/invalid/*.yaml"))
    report(len(glob.glob("tests/fixtures/valid/*.yaml")) >= 10, "at least 10 valid fixtures")
    report(len(invalid) >= 20, "at least 20 invalid fixtures")

    # The schema alone.
    for path in valid + invalid:
        want = "valid" if path in valid else marker(path)
        if want not in MARKERS:
            report(False, f"schema {path}", "first line must be '# schema: invalid|valid|skip'")
            continue
        if want == "skip":
            continue
        try:
            errors = schema_errors(validator, path)
        except yaml.YAMLError as e:
            report(False, f"schema {path}", "YAML error: " + str(e).replace("\n", " "))
            continue
        if want == "valid":
            report(not errors, f"schema accepts {path}", "; ".join(errors))
        else:
            report(bool(errors), f"schema rejects {path}",
                   errors[0] if errors else "accepted, but is marked '# schema: invalid'")

    # Agreement with the engine: every fixture, whatever the schema sees.
    fixtures = [p for p in valid if p.startswith("tests/")] + invalid
    if not os.access(rbk, os.X_OK):
        for path in fixtures:
            report(False, f"rbk validate {path}", f"no executable {rbk}")
        return 1
    with tempfile.TemporaryDirectory(prefix="rbk-schema-check-") as home:
        for path in fixtures:
            want = 0 if path in valid else 2
            code, first_line = rbk_validate(rbk, path, home)
            report(code == want, f"rbk validate {path} exits {want}",
                   f"exit {code}" + (f": {first_line}" if first_line else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
