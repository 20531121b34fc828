"""Command-line interface. It calls only the engine and renders results through views."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

import click

from gitops import __version__
from gitops.errors import GitopsError, NotImplementedYet

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_ROLLED_BACK = 3
#: When several apps end differently, the worst decides: an error outranks a rollback, which
#: outranks success.
_RANK = (EXIT_OK, EXIT_CHANGES, EXIT_ROLLED_BACK, EXIT_ERROR)

EPILOG = """\b
Exit codes:
  0  success, or no changes
  1  error (bad input, unreachable target, refused plan, a prune guard refused, ...)
  2  changes present (plan with --detailed-exitcode)
  3  rollout failed and the app was rolled back to its last good release
  With several apps the worst wins: an error (1) outranks a rollback (3).
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitops")
def cli() -> None:
    """Declarative GitOps for Kubernetes and Docker Swarm.

    A git repository of manifests is the source of truth: gitops validates it, diffs it against
    the live cluster or swarm, shows a plan, applies it with rolling updates, watches the rollout
    and rolls the whole app back to the last good revision when the rollout fails.
    """


def _exit(code: int) -> NoReturn:
    """End the command with an exit code (click returns it from main, or exits with it)."""
    click.get_current_context().exit(code)


def exit_code(*, outcomes: Iterable[str] = (), error: BaseException | None = None) -> int:
    """The one place exit codes come from: an error (any GitopsError, or a usage error) is 1; the
    outcomes of apps ("applied", "no-op", "rolled-back", "failed") give 0, 3 or 1, the worst winning."""
    codes = [EXIT_ERROR] if error is not None else []
    for outcome in outcomes:
        codes.append({"failed": EXIT_ERROR, "rolled-back": EXIT_ROLLED_BACK}.get(outcome, EXIT_OK))
    return max(codes, key=_RANK.index, default=EXIT_OK)


def _not_yet(command: str) -> None:
    raise NotImplementedYet(f"`gitops {command}` is not implemented yet")


@cli.command(epilog=EPILOG)
@click.argument("paths", nargs=-1)
@click.option("--repo", metavar="URL", help="Validate a git repository (fetched into a cache), not local files.")
@click.option("--ref", metavar="REF", help="Branch, tag or commit of --repo (default: its HEAD).")
@click.option("--strict", is_flag=True, help="Refuse unknown fields, kinds that have no schema, and policy warnings.")
@click.option("--kubernetes-version", metavar="X.Y", help="Validate against this Kubernetes version's schemas.")
@click.option("--no-policy", is_flag=True, help="Skip the policy rules (schemas and semantic checks only).")
@click.option("--list-rules", is_flag=True, help="List the policy rules (id, default severity, rationale, fix).")
@click.option("--output", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(
    paths: tuple[str, ...], repo: str | None, ref: str | None, strict: bool, kubernetes_version: str | None,
    no_policy: bool, list_rules: bool, output: str,
) -> None:
    """Validate manifests and compose files against their schemas.

    With no PATH, every app of gitops.yaml is validated. A PATH is a file or a directory; a file
    whose top level has `services:` is a compose file (validated for Swarm), anything else is read
    as Kubernetes manifests. The policy rules (latest images, missing limits and probes, literal
    secrets, ...) run too, configured by `policy:` in gitops.yaml; --strict makes their warnings
    errors. Exit code 0 when valid, 1 when any error is found.
    """
    from gitops import engine
    from gitops.views import validation as view

    if list_rules:
        rules = engine.policy_rules()
        click.echo(view.rules_json(rules) if output == "json" else view.rules_text(rules))
        _exit(EXIT_OK)
    if ref is not None and repo is None:
        raise click.UsageError("--ref needs --repo")
    report = engine.validate(paths, repo=repo, ref=ref, strict=strict, kubernetes_version=kubernetes_version,
                             policy=not no_policy)
    click.echo(view.as_json(report) if output == "json" else view.text(report))
    _exit(EXIT_OK if report.ok else EXIT_ERROR)


def _source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--ref", metavar="REF", help="Branch, tag or commit of --repo (default: its HEAD).")(f)
    f = click.option("--repo", metavar="URL", help="Read a git repository (fetched into a cache), not the "
                     "working directory.")(f)
    f = click.option("-C", "--dir", "directory", metavar="DIR", type=click.Path(file_okay=False),
                     help="The repository root holding gitops.yaml (default: the working directory).")(f)
    return f


def _guard_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--allow-mass-delete", is_flag=True,
                     help="Allow a revision that deletes most of the app (more than sync.max_delete_ratio, default "
                     "half, and at least sync.mass_delete_min, default 5), or renders no objects at all.")(f)
    f = click.option("--prune-data", is_flag=True,
                     help="Prune (or replace) PersistentVolumeClaims and named volumes too (default: kept; "
                     "sync.prune_data).")(f)
    f = click.option("--allow-cascade", is_flag=True,
                     help="Prune objects whose delete takes others with it: a Namespace with objects in it, a CRD "
                     "with custom resources, a network in use (default: refused; sync.allow_cascade).")(f)
    return f


def _allowed(allow_cascade: bool, prune_data: bool, allow_mass_delete: bool) -> Any:
    from gitops.model.plans import Guard

    return frozenset(g for g, on in ((Guard.CASCADE, allow_cascade), (Guard.DATA, prune_data),
                                     (Guard.MASS_DELETE, allow_mass_delete)) if on)


def _output_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--output", "output", type=click.Choice(["text", "json"]), default="text",
                        show_default=True, help="json: one JSON object per event and a final report.")(f)


def _workspace(directory: str | None, repo: str | None, ref: str | None) -> Any:
    from gitops import engine

    if ref is not None and repo is None:
        raise click.UsageError("--ref needs --repo")
    return engine.open_workspace(repo=repo, ref=ref, cwd=Path(directory) if directory else None)


def _style() -> Callable[[str, str], str]:
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
        return lambda text, _color: text

    def style(text: str, color: str) -> str:
        if color == "bold":
            return click.style(text, bold=True)
        return click.style(text, fg=color) if color else text

    return style


def _warn(warnings: list[Any]) -> None:
    for warning in warnings:
        click.echo(str(warning), err=True)


def _events(output: str) -> Callable[[dict[str, Any]], None]:
    from gitops.views import plans as view

    last: dict[str, str] = {}

    def emit(event: dict[str, Any]) -> None:
        if output == "json":
            click.echo(json.dumps(event, sort_keys=True))
            return
        line = view.event_text(event)
        if line is None:
            return
        app = str(event.get("app", ""))
        if event.get("event") == "progress":
            if last.get(app) == line:
                return  # only when what is pending changes
            last[app] = line
        click.echo(line)

    return emit


@cli.command(epilog=EPILOG)
@click.argument("apps", nargs=-1)
@_source_options
@click.option("--out", "out", metavar="FILE", type=click.Path(dir_okay=False),
              help="Save the plan (no secret values) to apply it later with `gitops apply FILE`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has changes, 0 when none.")
@click.option("--exact", is_flag=True, help="Confirm each changed object with a server-side dry-run apply.")
@click.option("-v", "--verbose", is_flag=True, help="List unchanged objects too.")
@_guard_options
@_output_option
def plan(apps: tuple[str, ...], directory: str | None, repo: str | None, ref: str | None, out: str | None,
         detailed_exitcode: bool, exact: bool, verbose: bool, allow_cascade: bool, prune_data: bool,
         allow_mass_delete: bool, output: str) -> None:
    """Show what apply would change, without changing anything.

    Reads the live objects of every selected app (all apps of gitops.yaml when none is named),
    diffs only the fields the repository sets or that gitops applied before, and shows each object
    as + create, ~ update, -/+ replace or - delete, with field-level changes. Secret values are
    never shown. With --detailed-exitcode: exit 0 for no changes, 2 for changes.

    Prune keeps data (PersistentVolumeClaims, volumes) and objects that opt out, and refuses a
    delete that cascades or a revision that deletes most of the app: such a plan is shown with
    the reasons and the command exits 1 (nothing is saved), unless the guard is lifted.
    """
    from gitops import engine
    from gitops.views import plans as view

    ws = _workspace(directory, repo, ref)
    result, warnings = engine.plan(ws, apps, exact=exact,
                                   allow=_allowed(allow_cascade, prune_data, allow_mass_delete))
    _warn(warnings)
    if out and result.ok:
        Path(out).write_text(json.dumps(result.to_json(), indent=2) + "\n")
    if output == "json":
        click.echo(json.dumps(result.to_json(), sort_keys=True))
    else:
        click.echo(view.plan_text(result, _style(), verbose=verbose))
        if out and result.ok:
            click.echo(f"\nSaved the plan to {out}; apply it with: gitops apply {out}")
    if not result.ok:
        click.echo("error: " + "; ".join(f"app {a.app}: refused ({', '.join(b.reason.value for b in a.blocked)})"
                                         for a in result.apps if not a.ok)
                   + (f"; the plan was not saved to {out}" if out else ""), err=True)
        _exit(EXIT_ERROR)
    _exit(EXIT_CHANGES if detailed_exitcode and result.has_changes else EXIT_OK)


@cli.command(epilog=EPILOG)
@click.argument("targets", nargs=-1)
@_source_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking (needed without a terminal).")
@click.option("--force-conflicts", is_flag=True, help="Take over fields another field manager owns.")
@click.option("--timeout", type=float, metavar="SECONDS", help="Bound on the rollout wait (default: the app's).")
@click.option("--no-rollback", is_flag=True, help="On failure, leave the app as it is; do not roll back.")
@click.option("--allow-bad-revision", is_flag=True, help="Apply a revision recorded as bad by a failed rollout.")
@_guard_options
@_output_option
def apply(targets: tuple[str, ...], directory: str | None, repo: str | None, ref: str | None,
          auto_approve: bool, force_conflicts: bool, timeout: float | None, no_rollback: bool,
          allow_bad_revision: bool, allow_cascade: bool, prune_data: bool, allow_mass_delete: bool,
          output: str) -> None:
    """Apply a saved plan (FILE.json) or the apps' current revision; watch the rollout; roll back.

    A saved plan is refused when the manifests or the live objects moved since it was made. Without
    a saved plan, the plan is shown and confirmed first (--auto-approve skips that). Two runners
    never apply one app at once: a lock on the target serializes them. When the rollout fails,
    every object of the app returns to the last good release and the exit code is 3.
    """
    from gitops import deploy, engine
    from gitops.model.plans import Plan
    from gitops.views import plans as view

    saved: Plan | None = None
    names = list(targets)
    if len(targets) == 1 and targets[0].endswith(".json") and Path(targets[0]).is_file():
        try:
            saved = Plan.from_json(json.loads(Path(targets[0]).read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise GitopsError(f"{targets[0]}: not a gitops plan: {exc}") from None
        names = []
    ws = _workspace(directory, repo, ref)
    allow = _allowed(allow_cascade, prune_data, allow_mass_delete)
    if saved is None and not auto_approve:
        preview, warnings = engine.plan(ws, names, allow=allow)
        _warn(warnings)
        click.echo(view.plan_text(preview, _style()))
        if not preview.ok:
            raise GitopsError("refused: " + "; ".join(b.message for a in preview.apps for b in a.blocked)
                              + "; nothing was changed")
        if preview.has_changes and not sys.stdin.isatty():
            raise GitopsError("refusing to apply without confirmation: no terminal to ask on; "
                              "pass --auto-approve, or apply a saved plan")
        elif preview.has_changes and not click.confirm("Apply these changes?", default=False):
            click.echo("Nothing applied.")
            _exit(EXIT_OK)
    options = deploy.Options(timeout=timeout or 0.0, auto_rollback=not no_rollback,
                             force_conflicts=force_conflicts, allow_bad_revision=allow_bad_revision)
    results = engine.apply(ws, names, saved=saved, options=options, on_event=_events(output), allow=allow)
    for result in results:
        if output == "json":
            click.echo(json.dumps({"event": "result", **result.to_json()}, sort_keys=True))
        elif result.outcome == "failed" and result.changeset is None and result.release is None:
            # It could not start (unreachable, locked, refused, does not render): nothing of it
            # was written; the other apps were still applied.
            click.echo(f"error: {result.error}", err=True)
        else:
            click.echo(view.result_text(result))
    _exit(exit_code(outcomes=[r.outcome for r in results]))


@cli.command(epilog=EPILOG)
@click.argument("apps", nargs=-1)
@_source_options
@_output_option
@click.option("--server", metavar="URL", help="Ask a running `gitops daemon` (its --listen URL) instead of the "
              "targets.")
def status(apps: tuple[str, ...], directory: str | None, repo: str | None, ref: str | None, output: str,
           server: str | None) -> None:
    """Show each app's revision, sync status (Synced / OutOfSync / Unknown), health and last result."""
    from gitops import engine
    from gitops.views import plans as view

    if server is not None:
        from gitops.daemon import api

        found_remote = api.apps(server, apps)
        if output == "json":
            click.echo(json.dumps(found_remote, sort_keys=True))
        else:
            click.echo(view.daemon_status_text(found_remote))
        _exit(EXIT_OK)
    ws = _workspace(directory, repo, ref)
    found = engine.status(ws, apps)
    if output == "json":
        click.echo(json.dumps([s.to_json() for s in found], sort_keys=True))
    else:
        click.echo(view.status_text(found))
    _exit(EXIT_OK)


@cli.command(epilog=EPILOG)
@click.argument("app")
@_source_options
@_output_option
def history(app: str, directory: str | None, repo: str | None, ref: str | None, output: str) -> None:
    """List the releases recorded for an app (kept in the target; the last 10)."""
    from gitops import engine
    from gitops.views import plans as view

    ws = _workspace(directory, repo, ref)
    state = engine.history(ws, app)
    if output == "json":
        releases = [{k: v for k, v in r.to_json().items() if k != "manifests"} for r in state.releases]
        click.echo(json.dumps({"app": app, "releases": releases, "bad_revisions": list(state.bad_revisions)},
                              sort_keys=True))
    else:
        click.echo(view.history_text(state))
    _exit(EXIT_OK)


@cli.command(epilog=EPILOG)
@click.argument("app")
@_source_options
@click.option("--to", "to_revision", metavar="REVISION", help="Roll back to this recorded revision (a prefix "
              "is enough) instead of the last good one.")
@_output_option
def rollback(app: str, directory: str | None, repo: str | None, ref: str | None, to_revision: str | None,
             output: str) -> None:
    """Return an app to its last good release (or to --to REVISION), and wait until it is healthy."""
    from gitops import engine
    from gitops.views import plans as view

    ws = _workspace(directory, repo, ref)
    result = engine.rollback(ws, app, to_revision=to_revision, on_event=_events(output))
    if output == "json":
        click.echo(json.dumps({"event": "result", **result.to_json()}, sort_keys=True))
    else:
        click.echo(view.result_text(result))
    _exit(EXIT_OK if result.outcome == "rolled-back" else EXIT_ERROR)


@cli.command(epilog=EPILOG)
@click.option("--repo", metavar="URL", help="The repository to follow (any URL `--repo` takes elsewhere, file:// "
              "included).")
@click.option("--ref", metavar="BRANCH", help="The branch (or tag, or commit) of --repo to follow; default: its "
              "HEAD.")
@click.option("-C", "directory", metavar="DIR", help="Follow the commits of a local clone instead: its checked-out "
              "branch (the work tree itself is never touched).")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="Listener for /healthz, /readyz, /metrics, /api/webhook and /api/v1.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Apps reconciled at once.")
@click.option("--webhook-secret-file", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
              help="The webhooks' shared secret (default: $GITOPS_WEBHOOK_SECRET; without one, webhooks are refused).")
@click.option("--env-allow", metavar="NAME", multiple=True,
              help="An environment variable compose ${VAR} interpolation may read (repeat); env_files always may.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="One event a line; default: text on a terminal, json otherwise.")
@click.option("--notify-secrets", metavar="DIR", type=click.Path(exists=True, file_okay=False),
              help="The directory that {file: NAME} in gitops.yaml's notifications: reads (a mounted Secret); "
              "{env: NAME} reads GITOPS_NOTIFY_* variables only.")
@click.option("--shard", default="0/1", show_default=True, metavar="I/N",
              help="Serve the apps whose stable hash modulo N is I (N replicas share the work).")
@click.option("--leader-ttl", default=15, show_default=True, type=click.IntRange(3, 600), metavar="SECONDS",
              help="Leader lease duration: a standby takes over this long after a leader dies.")
@click.option("--leader-election", type=click.Choice(["auto", "kubernetes", "swarm", "off"]), default="auto",
              show_default=True, help="Where the leader lease lives (auto: a Kubernetes app's cluster if any, "
              "else the swarm); off: a single daemon that acts at once.")
def daemon(repo: str | None, ref: str | None, directory: str | None, listen: str, workers: int,
           webhook_secret_file: str | None, env_allow: tuple[str, ...], log_format: str | None,
           notify_secrets: str | None, shard: str, leader_ttl: int, leader_election: str) -> None:
    """Run until SIGTERM: keep every app of the repository's gitops.yaml equal to git.

    Polls the repository (`sync.interval`, one `ls-remote` per tick for all apps, a fetch only
    when it moved), applies new revisions with the same flow as `gitops apply` (`sync.auto`),
    re-applies drift (`sync.self_heal`), and takes signed push webhooks at /api/webhook.
    GITOPS_API_TOKEN enables POST /api/v1/apps/NAME/sync (bearer token).
    """
    from gitops import daemon as daemon_module
    from gitops import source
    from gitops.daemon import notify
    from gitops.daemon.log import Log

    if (repo is None) == (directory is None):
        raise click.UsageError("give the repository to follow: --repo URL [--ref BRANCH], or -C DIR")
    if directory is not None:
        if ref is not None:
            raise click.UsageError("-C DIR follows the branch checked out there; --ref goes with --repo")
        path = Path(directory).resolve()
        repo, ref = str(path), source.current_branch(path)
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit():
        raise click.UsageError(f"--listen takes HOST:PORT, not {listen!r}")
    if webhook_secret_file is not None:
        secret = Path(webhook_secret_file).read_bytes().strip()
    else:
        secret = os.environ.get("GITOPS_WEBHOOK_SECRET", "").encode()
    index_text, _, count_text = shard.partition("/")
    if not (index_text.isdigit() and count_text.isdigit() and int(index_text) < int(count_text)):
        raise click.UsageError(f"--shard takes I/N with 0 <= I < N, not {shard!r}")
    fmt = log_format or ("text" if sys.stderr.isatty() else "json")
    assert repo is not None
    options = daemon_module.Options(
        repo=repo, ref=ref, workers=workers,
        env=daemon_module.interpolation_env(os.environ, env_allow),
        shard=int(index_text), shards=int(count_text), leader_ttl=leader_ttl, leader_election=leader_election,
        notify_env=notify.environment(os.environ), notify_secrets=Path(notify_secrets) if notify_secrets else None,
    )
    listener = daemon_module.Listener(host.strip("[]"), int(port_text), secret,
                                      os.environ.get("GITOPS_API_TOKEN", ""))
    _exit(daemon_module.run(options, listener, log=Log(fmt)))


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exit_code(error=exc))
    except click.exceptions.Abort as exc:
        click.echo("Aborted.", err=True)
        sys.exit(exit_code(error=exc))
    except GitopsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exit_code(error=exc))
    sys.exit(code if isinstance(code, int) else EXIT_OK)
