"""`tests/clusters up|env|status|down`: one entry point to the test clusters for people and tools."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from . import kube, swarm


def _selected(args: argparse.Namespace) -> tuple[bool, bool]:
    only = args.only
    return only in (None, "kube"), only in (None, "swarm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests/clusters", description=__doc__)
    parser.add_argument("command", choices=["up", "env", "status", "down", "build", "build-helm", "build-sops"])
    parser.add_argument("--only", choices=["kube", "swarm"], help="act on one cluster only")
    parser.add_argument("--keep-data", action="store_true", help="down: keep the etcd data")
    args = parser.parse_args(argv)
    want_kube, want_swarm = _selected(args)
    try:
        if args.command == "build":
            from . import build

            for name, path in build.binaries().items():
                print(f"{name}\t{path}")
        elif args.command == "build-helm":
            from . import build

            print(build.helm())
        elif args.command == "build-sops":
            from . import build

            for name, path in build.sops_tools().items():
                print(f"{name}\t{path}")
        elif args.command == "up":
            from . import build

            try:
                build.sops_tools()  # the SOPS tests encrypt with them and gitops decrypts with sops
            except (RuntimeError, OSError, subprocess.CalledProcessError) as err:
                build.log(f"sops and age could not be built ({err}); the SOPS tests skip (fail with CI=true)")
            if want_swarm:
                print(swarm.up().describe())
            if want_kube:
                print(kube.up().describe())
                from . import build

                build.helm()  # Helm apps render with it; built once per pinned version
        elif args.command == "env":
            from . import build

            tools = build.sops_tools_if_built()
            if tools is not None:
                print(f"export GITOPS_SOPS={shlex.quote(str(tools['sops']))}")
            if want_kube:
                from . import build

                print(f"export KUBECONFIG={shlex.quote(str(kube.kubeconfig_path()))}")
                helm = build.helm_if_built()
                if helm is not None:
                    print(f"export GITOPS_HELM={shlex.quote(str(helm))}")
            if want_swarm:
                print(f"export DOCKER_HOST={shlex.quote(swarm.docker_host())}")
        elif args.command == "status":
            ready = True
            if want_swarm:
                state = swarm.status()
                ready &= state.ready
                print(state.describe())
            if want_kube:
                kstate = kube.status()
                ready &= kstate.ready
                print(kstate.describe())
            return 0 if ready else 1
        elif args.command == "down":
            if want_kube:
                kube.down(wipe=not args.keep_data)
            if want_swarm:
                swarm.down()
    except RuntimeError as err:
        print(f"tests/clusters: {err}", file=sys.stderr)
        return 1
    return 0
