"""Command-line interface. It calls only the engine and renders results through views."""

from __future__ import annotations

import sys

import click

from gitops import __version__
from gitops.errors import GitopsError, NotImplementedYet

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_ROLLED_BACK = 3

EPILOG = """\b
Exit codes:
  0  success, or no changes
  1  error (bad input, unreachable target, refused plan, ...)
  2  changes present (plan with --detailed-exitcode)
  3  rollout failed and the app was rolled back to its last good release
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitops")
def cli() -> None:
    """Declarative GitOps for Kubernetes and Docker Swarm.

    A git repository of manifests is the source of truth: gitops validates it, diffs it against
    the live cluster or swarm, shows a plan, applies it with rolling updates, watches the rollout
    and rolls the whole app back to the last good revision when the rollout fails.
    """


def _not_yet(command: str) -> None:
    raise NotImplementedYet(f"`gitops {command}` is not implemented yet")


@cli.command(epilog=EPILOG)
@click.argument("paths", nargs=-1)
@click.option("--repo", metavar="URL", help="Validate a git repository (fetched into a cache), not local files.")
@click.option("--ref", metavar="REF", help="Branch, tag or commit of --repo (default: its HEAD).")
@click.option("--strict", is_flag=True, help="Refuse unknown fields, and kinds that have no schema.")
@click.option("--kubernetes-version", metavar="X.Y", help="Validate against this Kubernetes version's schemas.")
@click.option("--output", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(
    paths: tuple[str, ...], repo: str | None, ref: str | None, strict: bool, kubernetes_version: str | None,
    output: str,
) -> None:
    """Validate manifests and compose files against their schemas.

    With no PATH, every app of gitops.yaml is validated. A PATH is a file or a directory; a file
    whose top level has `services:` is a compose file (validated for Swarm), anything else is read
    as Kubernetes manifests. Exit code 0 when valid, 1 when any error is found.
    """
    from gitops import engine
    from gitops.views import validation as view

    if ref is not None and repo is None:
        raise click.UsageError("--ref needs --repo")
    report = engine.validate(paths, repo=repo, ref=ref, strict=strict, kubernetes_version=kubernetes_version)
    click.echo(view.as_json(report) if output == "json" else view.text(report))
    if not report.ok:
        sys.exit(EXIT_ERROR)


@cli.command(epilog=EPILOG)
@click.argument("apps", nargs=-1)
def plan(apps: tuple[str, ...]) -> None:
    """Show what apply would change, without changing anything."""
    _not_yet("plan")


@cli.command(epilog=EPILOG)
@click.argument("targets", nargs=-1)
def apply(targets: tuple[str, ...]) -> None:
    """Apply a saved plan or the apps' current revision, watch the rollout, roll back on failure."""
    _not_yet("apply")


@cli.command(epilog=EPILOG)
@click.argument("apps", nargs=-1)
def status(apps: tuple[str, ...]) -> None:
    """Show each app's revision, sync status, health and last result."""
    _not_yet("status")


@cli.command(epilog=EPILOG)
@click.argument("app")
def history(app: str) -> None:
    """List the releases recorded for an app."""
    _not_yet("history")


@cli.command(epilog=EPILOG)
@click.argument("app")
def rollback(app: str) -> None:
    """Return an app to its last good release (or to --to REVISION)."""
    _not_yet("rollback")


@cli.command(epilog=EPILOG)
def daemon() -> None:
    """Run forever: sync every app on a schedule and heal drift."""
    _not_yet("daemon")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_ERROR)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_ERROR)
    except GitopsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_OK)
