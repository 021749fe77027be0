"""strimzi_validate.py CRD_DIR FILE...: validate every kafka.strimzi.io document of FILEs
against the openAPIV3Schema of its CustomResourceDefinition in CRD_DIR (scripts/strimzi-crds.sh
makes them from the pinned Strimzi release), the way `kubectl apply` checks a custom resource:
types, enums, required fields and bounds, and, as kubectl's strict field validation does, no
field the schema does not know. Other API groups are left to kubernetes-validate. An unknown
Strimzi kind or version is an error, not a skip. Exit 1 listing every problem."""

import sys
from pathlib import Path

import jsonschema
import yaml

GROUP = "kafka.strimzi.io"


def strict(schema):
    """The schema with every object that lists its properties closed to others, unless it
    says it keeps unknown fields (x-kubernetes-preserve-unknown-fields)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def load_validators(crd_dir):
    """(kind, version) -> validator, for every served version of every CRD in crd_dir."""
    validators = {}
    for path in sorted(Path(crd_dir).glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["group"] == GROUP, path
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = strict(version["schema"]["openAPIV3Schema"])
                validators[(crd["spec"]["names"]["kind"], version["name"])] = jsonschema.Draft4Validator(schema)
    if not validators:
        raise SystemExit(f"no Strimzi CRD in {crd_dir}")
    return validators


def problems(validators, path):
    """Yield (where, message) for each problem of each Strimzi document of path, and
    (where, None) for each valid one."""
    try:
        documents = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    except yaml.YAMLError as e:
        yield str(path), f"YAML error: {e}"
        return
    for doc in documents:
        group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
        if group != GROUP:
            continue
        kind = doc.get("kind")
        where = f"{path}: {kind}/{doc.get('metadata', {}).get('name')}"
        validator = validators.get((kind, version))
        if validator is None:
            yield where, f"no schema for {kind} in {GROUP}/{version}"
            continue
        errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
        for error in errors:
            field = ".".join(str(p) for p in error.absolute_path) or "(document)"
            yield where, f"{field}: {error.message}"
        if not errors:
            yield where, None


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    validators = load_validators(argv[1])
    checked = failures = 0
    for path in argv[2:]:
        for where, message in problems(validators, path):
            if message is None:
                checked += 1
                print(f"valid {where}")
            else:
                failures += 1
                print(f"{where}: {message}", file=sys.stderr)
    if checked == 0 and failures == 0:
        print("no Strimzi resource found", file=sys.stderr)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
