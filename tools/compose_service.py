"""compose_service.py FILE... SERVICE: what docker compose would give SERVICE's container,
from the compose FILEs (the first is the base, later ones override it), as bash arrays to
eval: SERVICE_ENV (NAME=VALUE), SERVICE_ARGS (the command), SERVICE_SECRETS
(NAME=SOURCE_FILE, mounted at /run/secrets/NAME) and SERVICE_HEALTH (the healthcheck's
CMD or CMD-SHELL words). scripts/compose-rehearse.sh runs the service's binary with them.

Values are interpolated as compose does, from this process's environment: ${VAR:-default},
${VAR-default}, ${VAR}, $VAR, and $$ for a literal $. Files merge as compose merges them for
the keys used here: mappings key by key (environment, depends_on), anything else replaced."""

import os
import re
import shlex
import sys
from pathlib import Path

import yaml

VARIABLE = re.compile(r"\$(?:\$|\{(\w+)(?:(:?-)([^}]*))?\}|(\w+))")


def interpolate(value):
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        current = os.environ.get(name)
        if m.group(2) == ":-" and not current:
            return m.group(3)
        if m.group(2) == "-" and current is None:
            return m.group(3)
        return current or ""

    return VARIABLE.sub(substitute, value)


def merge(base, override):
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


def environment(env):
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in (env or {}).items()}


def describe(files, name):
    project = Path(files[0]).resolve().parent
    docs = [interpolate(yaml.safe_load(Path(f).read_text())) for f in files]
    merged = {}
    for doc in docs:
        merged = merge(merged, doc)
    service = merged["services"][name]
    command = service.get("command", [])
    if isinstance(command, str):
        command = shlex.split(command)
    secrets = []
    for secret in service.get("secrets", []):
        source = secret if isinstance(secret, str) else secret["source"]
        target = source if isinstance(secret, str) else secret.get("target", source)
        path = Path(merged["secrets"][source]["file"])
        secrets.append(f"{target}={path if path.is_absolute() else (project / path).resolve()}")
    health = service.get("healthcheck", {}).get("test", [])
    if health and health[0] == "CMD-SHELL":
        health = ["sh", "-c", health[1]]
    elif health and health[0] == "CMD":
        health = health[1:]
    return {
        "SERVICE_ENV": [f"{k}={v}" for k, v in environment(service.get("environment")).items()],
        "SERVICE_ARGS": [str(a) for a in command],
        "SERVICE_SECRETS": secrets,
        "SERVICE_HEALTH": [str(w) for w in health],
    }


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    for var, words in describe(argv[1:-1], argv[-1]).items():
        print(f"{var}=({' '.join(shlex.quote(w) for w in words)})")


if __name__ == "__main__":
    main(sys.argv)
