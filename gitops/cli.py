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
from gitops.errors import GitopsError, NotImplementedYet, SignatureError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_ROLLED_BACK = 3
EXIT_UNSIGNED = 4  # the revision's commit is not signed by an allowed signer: refused, nothing written
#: When several apps end differently, the worst decides: an error outranks a rollback, which
#: outranks success.
_RANK = (EXIT_OK, EXIT_CHANGES, EXIT_ROLLED_BACK, EXIT_ERROR, EXIT_UNSIGNED)

EPILOG = """\b
Exit codes:
  0  success, or no changes
  1  error (bad input, unreachable target, refused plan, a prune guard refused, ...)
  2  changes present (plan or diff with --detailed-exitcode)
  3  rollout failed and the app was rolled back to its last good release
  4  the revision's commit is unsigned or not signed by an allowed signer (--verify-ssh, --verify-gpg)
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
    """The one place exit codes come from: an error (any GitopsError, or a usage error) is 1, a
    revision refused for its signature (SignatureError) 4; the outcomes of apps ("applied",
    "no-op", "rolled-back", "failed") give 0, 3 or 1, the worst winning."""
    codes = [] if error is None else [EXIT_UNSIGNED if isinstance(error, SignatureError) else EXIT_ERROR]
    for outcome in outcomes:
        codes.append({"failed": EXIT_ERROR, "rolled-back": EXIT_ROLLED_BACK}.get(outcome, EXIT_OK))
    return max(codes, key=_RANK.index, default=EXIT_OK)


def _not_yet(command: str) -> None:
    raise NotImplementedYet(f"`gitops {command}` is not implemented yet")


def _helm_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--helm", "helm", metavar="PATH", envvar="GITOPS_HELM",
                        help="The helm binary for apps that are Helm charts ($GITOPS_HELM; default: helm on PATH).")(f)


def _tools(helm: str | None) -> Any:
    """The helm binary and the chart cache of this run (one lookup, here at the edge)."""
    from gitops import engine

    return engine.Tools.find(os.environ, helm)


@cli.command(epilog=EPILOG)
@click.argument("paths", nargs=-1)
@click.option("--repo", metavar="URL", help="Validate a git repository (fetched into a cache), not local files.")
@click.option("--ref", metavar="REF", help="Branch, tag or commit of --repo (default: its HEAD).")
@click.option("--strict", is_flag=True, help="Refuse unknown fields, kinds that have no schema, and policy warnings.")
@click.option("--kubernetes-version", metavar="X.Y", help="Validate against this Kubernetes version's schemas.")
@click.option("--no-policy", is_flag=True, help="Skip the policy rules (schemas and semantic checks only).")
@click.option("--list-rules", is_flag=True, help="List the policy rules (id, default severity, rationale, fix).")
@click.option("--output", "output", type=click.Choice(["text", "json", "markdown", "github", "sarif"]), default="text",
              show_default=True, help="markdown: for a pull-request comment; github: workflow commands that annotate "
              "the lines (::error file=...,line=...,col=...::...); sarif: SARIF 2.1.0 for code scanning.")
@click.option("--path-prefix", metavar="DIR", default="",
              help="With github or sarif: prefix file paths with DIR (where gitops.yaml sits in the repository).")
@_helm_option
def validate(
    paths: tuple[str, ...], repo: str | None, ref: str | None, strict: bool, kubernetes_version: str | None,
    no_policy: bool, list_rules: bool, output: str, path_prefix: str, helm: str | None,
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
                             policy=not no_policy, tools=_tools(helm))
    click.echo(_validation_view(report, output, path_prefix))
    _exit(EXIT_OK if report.ok else EXIT_ERROR)


def _validation_view(report: Any, output: str, path_prefix: str) -> str:
    from gitops.views import ci
    from gitops.views import validation as view

    if output == "json":
        return view.as_json(report)
    if output == "markdown":
        return ci.validation_markdown(report)
    if output == "github":
        return ci.github(report, prefix=path_prefix)
    if output == "sarif":
        return ci.sarif_text(report, prefix=path_prefix)
    return view.text(report)


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


def _verify_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--verify-gpg", "verify_gpg", metavar="FILE", multiple=True, envvar="GITOPS_VERIFY_GPG",
                     type=click.Path(exists=True, path_type=Path),
                     help="Apply only commits signed by these GPG public keys (a key file, or a directory of them; "
                     "repeat; $GITOPS_VERIFY_GPG, paths separated by ':'). Never read from the repository.")(f)
    f = click.option("--verify-ssh", "verify_ssh", metavar="FILE", envvar="GITOPS_VERIFY_SSH",
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Apply only commits signed by a key of this SSH allowed-signers file (ssh-keygen's "
                     "ALLOWED SIGNERS format; $GITOPS_VERIFY_SSH). Never read from the repository.")(f)
    return f


def _signers(verify_ssh: Path | None, verify_gpg: tuple[Path, ...]) -> Any:
    from gitops import engine

    return engine.Signers(ssh=verify_ssh.resolve() if verify_ssh else None, gpg=tuple(p.resolve() for p in verify_gpg))


def _output_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--output", "output", type=click.Choice(["text", "json"]), default="text",
                        show_default=True, help="json: one JSON object per event and a final report.")(f)


def _workspace(directory: str | None, repo: str | None, ref: str | None, signers: Any = None,
               helm: str | None = None) -> Any:
    from gitops import engine

    if ref is not None and repo is None:
        raise click.UsageError("--ref needs --repo")
    ws = engine.open_workspace(repo=repo, ref=ref, cwd=Path(directory) if directory else None, signers=signers,
                               tools=_tools(helm))
    if signers is not None and signers.configured:
        click.echo(f"verified: {ws.signature}", err=True)
    return ws


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
@_verify_options
@click.option("--output", "output", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="json: one JSON object; markdown: for a pull-request comment.")
@_helm_option
def plan(apps: tuple[str, ...], directory: str | None, repo: str | None, ref: str | None, out: str | None,
         detailed_exitcode: bool, exact: bool, verbose: bool, allow_cascade: bool, prune_data: bool,
         allow_mass_delete: bool, verify_ssh: Path | None, verify_gpg: tuple[Path, ...], output: str,
         helm: str | None) -> None:
    """Show what apply would change, without changing anything.

    Reads the live objects of every selected app (all apps of gitops.yaml when none is named),
    diffs only the fields the repository sets or that gitops applied before, and shows each object
    as + create, ~ update, -/+ replace or - delete, with field-level changes. Secret values are
    never shown. With --detailed-exitcode: exit 0 for no changes, 2 for changes.

    Prune keeps data (PersistentVolumeClaims, volumes) and objects that opt out, and refuses a
    delete that cascades or a revision that deletes most of the app: such a plan is shown with
    the reasons and the command exits 1 (nothing is saved), unless the guard is lifted.

    With --verify-ssh / --verify-gpg, the revision's commit must be signed by an allowed signer
    (exit 4 otherwise); a local work tree is read at its signed HEAD commit.
    """
    from gitops import engine, source
    from gitops.model.plans import PROVISIONAL_SECRET_NAMES
    from gitops.views import plans as view

    ws = _workspace(directory, repo, ref, _signers(verify_ssh, verify_gpg), helm)
    result, warnings = engine.plan(ws, apps, exact=exact,
                                   allow=_allowed(allow_cascade, prune_data, allow_mass_delete))
    _warn(warnings)
    pinned = ws.revision if repo is not None and source.has_credentials(repo) else None
    if out and any(w.code == PROVISIONAL_SECRET_NAMES for w in warnings):
        click.echo(f"error: the plan was not saved to {out}: its secret names are provisional until the app's first "
                   f"apply creates its secret naming key; apply without a saved plan: "
                   f"{_apply_hint(list(apps), directory, repo, ref, pinned)}", err=True)
        _exit(EXIT_ERROR)
    if out and result.ok:
        Path(out).write_text(json.dumps(result.to_json(), indent=2) + "\n")
    if output == "json":
        click.echo(json.dumps(result.to_json(), sort_keys=True))
    elif output == "markdown":
        from gitops.views import ci

        click.echo(ci.plan_markdown(result))
    else:
        click.echo(view.plan_text(result, _style(), verbose=verbose))
        if out and result.ok:
            click.echo(f"\nSaved the plan to {out}; apply it with: {_apply_hint([out], directory, repo, ref, pinned)}")
    if not result.ok:
        click.echo("error: " + "; ".join(f"app {a.app}: refused ({', '.join(b.reason.value for b in a.blocked)})"
                                         for a in result.apps if not a.ok)
                   + (f"; the plan was not saved to {out}" if out else ""), err=True)
        _exit(EXIT_ERROR)
    _exit(EXIT_CHANGES if detailed_exitcode and result.has_changes else EXIT_OK)


def _apply_hint(targets: list[str], directory: str | None, repo: str | None, ref: str | None,
                revision: str | None = None) -> str:
    """The command that applies ``targets`` (a plan saved to a file, or apps; none: every app),
    with the source options the plan was made with.
    A repository URL's credentials are never printed: the hint names the URL without them and the
    planned commit, which the fetch cache already holds (so it works pasted on this machine)."""
    import shlex

    from gitops import source

    if repo is not None and revision:
        repo, ref = source.identity(repo), revision
    words = ["gitops", "apply"]
    words += ["-C", directory] if directory else []
    words += ["--repo", repo] if repo else []
    words += ["--ref", ref] if ref else []
    return shlex.join([*words, *(t if not t.startswith("-") else f"./{t}" for t in targets)])


def _saved_plan(target: str) -> Any:
    """The saved plan a file holds, recognised by its content (any name); None when ``target`` is
    not a file, or a file that is not JSON at all and whose name does not end in .json (then it
    names an app). A JSON file that is not a valid plan is an error."""
    from gitops.model.plans import Plan

    path = Path(target)
    if not path.is_file():
        return None
    try:
        text = path.read_text("utf-8")
        data = json.loads(text)
    except (OSError, UnicodeError, ValueError) as exc:
        if target.endswith(".json"):
            raise GitopsError(f"{target}: not a gitops plan: {exc}") from None
        return None
    try:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return Plan.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise GitopsError(f"{target}: not a gitops plan: {exc}") from None


@cli.command(epilog=EPILOG)
@click.argument("targets", nargs=-1)
@_source_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking (needed without a terminal).")
@click.option("--force-conflicts", is_flag=True, help="Take over fields another field manager owns.")
@click.option("--timeout", type=float, metavar="SECONDS", help="Bound on the rollout wait (default: the app's).")
@click.option("--no-rollback", is_flag=True, help="On failure, leave the app as it is; do not roll back.")
@click.option("--allow-bad-revision", is_flag=True, help="Apply a revision recorded as bad by a failed rollout.")
@_guard_options
@_verify_options
@_output_option
@_helm_option
def apply(targets: tuple[str, ...], directory: str | None, repo: str | None, ref: str | None,
          auto_approve: bool, force_conflicts: bool, timeout: float | None, no_rollback: bool,
          allow_bad_revision: bool, allow_cascade: bool, prune_data: bool, allow_mass_delete: bool,
          verify_ssh: Path | None, verify_gpg: tuple[Path, ...], output: str, helm: str | None) -> None:
    """Apply a saved plan (a file `gitops plan --out FILE` wrote) or the apps' current revision;
    watch the rollout; roll back.

    A saved plan is refused when the manifests or the live objects moved since it was made. Without
    a saved plan, the plan is shown and confirmed first (--auto-approve skips that). Two runners
    never apply one app at once: a lock on the target serializes them. When the rollout fails,
    every object of the app returns to the last good release and the exit code is 3.

    With --verify-ssh / --verify-gpg, a revision whose commit is not signed by an allowed signer is
    refused before anything is read from it or written (exit 4).
    """
    from gitops import deploy, engine
    from gitops.model.plans import Plan
    from gitops.views import plans as view

    saved: Plan | None = None
    names = list(targets)
    if len(targets) == 1:
        saved = _saved_plan(targets[0])
        names = [] if saved is not None else names
    ws = _workspace(directory, repo, ref, _signers(verify_ssh, verify_gpg), helm)
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
@_helm_option
def status(apps: tuple[str, ...], directory: str | None, repo: str | None, ref: str | None, output: str,
           server: str | None, helm: str | None) -> None:
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
    ws = _workspace(directory, repo, ref, helm=helm)
    found = engine.status(ws, apps)
    if output == "json":
        click.echo(json.dumps([s.to_json() for s in found], sort_keys=True))
    else:
        click.echo(view.status_text(found))
    _exit(EXIT_OK)


@cli.command(name="diff", epilog=EPILOG)
@click.argument("apps", nargs=-1)
@click.option("--base", "base", metavar="REF", required=True,
              help="The revision to compare from: a branch, tag or commit (origin/main, HEAD~1, a SHA).")
@click.option("--head", "head", metavar="REF", help="The revision to compare to (default: the working tree as it is).")
@click.option("-C", "--dir", "directory", metavar="DIR", type=click.Path(file_okay=False),
              help="The repository root holding gitops.yaml (default: the working directory).")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the rendered objects changed, 0 when not.")
@click.option("-v", "--verbose", is_flag=True, help="Add a unified diff of the rendered YAML (secret values masked).")
@click.option("--output", "output", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="markdown: made for a pull-request comment.")
@click.option("--html", "html_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML report to FILE.")
@_helm_option
def diff_command(apps: tuple[str, ...], base: str, head: str | None, directory: str | None,
                 detailed_exitcode: bool, verbose: bool, output: str, html_file: str | None,
                 helm: str | None) -> None:
    """Show what a change to the repository does to the rendered objects; no cluster needed.

    Renders every app of gitops.yaml (or the named ones) at both revisions and lists, per app, the
    objects added, removed and changed, with field-level changes as in `gitops plan`; apps added
    to or removed from gitops.yaml are shown as such, unchanged apps are listed. Secret values are
    masked as in `gitops plan`. An app that does not validate at either revision is reported and
    the exit code is 1; with --detailed-exitcode, 2 means something changed.
    """
    from gitops import engine
    from gitops.views import diffs as view

    root = Path(directory) if directory else Path.cwd()
    tools = _tools(helm)
    base_ws = engine.open_ref(root, base, tools=tools)
    head_ws = engine.open_ref(root, head, tools=tools) if head else engine.open_workspace(cwd=root, tools=tools)
    result = engine.diff(base_ws, head_ws, apps, base_label=base, head_label=head or "working tree")
    if html_file:
        Path(html_file).write_text(view.html_page(result), "utf-8")
    if output == "json":
        click.echo(view.as_json(result, verbose=verbose))
    elif output == "markdown":
        click.echo(view.markdown(result))
    else:
        click.echo(view.text(result, _style(), verbose=verbose))
    if not result.ok:
        _exit(EXIT_ERROR)
    _exit(EXIT_CHANGES if detailed_exitcode and result.has_changes else EXIT_OK)


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
@click.option("--log-level", type=click.Choice(["info", "debug"]), default="info", show_default=True,
              help="debug adds each planned change with its fields (secret values masked, as in every plan).")
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
@_verify_options
@_helm_option
def daemon(repo: str | None, ref: str | None, directory: str | None, listen: str, workers: int,
           webhook_secret_file: str | None, env_allow: tuple[str, ...], log_format: str | None,
           log_level: str, notify_secrets: str | None, shard: str, leader_ttl: int, leader_election: str,
           verify_ssh: Path | None, verify_gpg: tuple[Path, ...], helm: str | None) -> None:
    """Run until SIGTERM: keep every app of the repository's gitops.yaml equal to git.

    Polls the repository (`sync.interval`, one `ls-remote` per tick for all apps, a fetch only
    when it moved), applies new revisions with the same flow as `gitops apply` (`sync.auto`),
    re-applies drift (`sync.self_heal`), and takes signed push webhooks at /api/webhook.
    GITOPS_API_TOKEN enables POST /api/v1/apps/NAME/sync (bearer token). With --verify-ssh /
    --verify-gpg, a revision whose commit is not signed by an allowed signer is held (the apps stay
    at their last verified revision) until a newer commit.
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
        signers=_signers(verify_ssh, verify_gpg), tools=_tools(helm),
    )
    listener = daemon_module.Listener(host.strip("[]"), int(port_text), secret,
                                      os.environ.get("GITOPS_API_TOKEN", ""))
    _exit(daemon_module.run(options, listener, log=Log(fmt, level=log_level)))


@cli.command(epilog=EPILOG)
@click.option("--print", "print_target", type=click.Choice(["kubernetes", "swarm"]), metavar="kubernetes|swarm",
              help="Print the daemon's install manifests for this version, to pipe to kubectl or docker stack.")
@click.option("--sharded", is_flag=True, help="Kubernetes: the sharded variant (a StatefulSet, one shard per pod).")
def install(print_target: str | None, sharded: bool) -> None:
    """Print the manifests that run `gitops daemon` in a cluster or a swarm (this version's image).

    \b
      gitops install --print kubernetes | kubectl apply -f -
      gitops install --print kubernetes --sharded | kubectl apply -f -
      gitops install --print swarm > stack.yaml
      printf %s "$WEBHOOK_SECRET" | docker secret create gitops_webhook -
      DOCKER_GID=$(stat -c %g /var/run/docker.sock) docker stack deploy -c stack.yaml gitops

    They are the files of deploy/ in the source tree; edit the repository to follow (--repo) and
    the app namespaces (app-namespaces.yaml) before applying. Nothing is applied by this command.
    """
    from gitops import install as install_module

    if print_target is None:
        raise click.UsageError("say what to print: gitops install --print kubernetes, or: gitops install --print swarm")
    if sharded and print_target != "kubernetes":
        raise click.UsageError("--sharded goes with --print kubernetes")
    click.echo(install_module.manifests("kubernetes-sharded" if sharded else print_target), nl=False)


@cli.group(name="ci")
def ci_group() -> None:
    """Helpers for CI pipelines (the GitHub Action at the repository root runs `gitops ci run`)."""


@ci_group.command(name="run")
def ci_run() -> None:
    """Run one step of the GitHub Action from its environment: INPUT_COMMAND (validate, diff, plan,
    apply), INPUT_APPS, INPUT_ARGS, INPUT_COMMENT, INPUT_BASE, INPUT_WORKING_DIRECTORY, and the
    runner's GITHUB_EVENT_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_API_URL,
    GITHUB_REPOSITORY and GITHUB_TOKEN. Exit code: the command's, except 2 (changes) which is 0
    with the output has-changes=true."""
    from gitops.ci import action

    env = os.environ
    command, apps, args, comment = action.parse_inputs(env.get("INPUT_COMMAND", "validate"), env.get("INPUT_APPS", ""),
                                                       env.get("INPUT_ARGS", ""), env.get("INPUT_COMMENT", "false"))
    settings = action.Settings(
        command, apps, args, comment, base=env.get("INPUT_BASE", ""),
        working_directory=env.get("INPUT_WORKING_DIRECTORY", "") or ".",
        event=action.load_event(env.get("GITHUB_EVENT_PATH", "")),
        output_file=Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
        summary_file=Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None,
        api_url=env.get("GITHUB_API_URL", "https://api.github.com"), repository=env.get("GITHUB_REPOSITORY", ""),
        token=env.get("GITHUB_TOKEN", ""),
    )
    _exit(action.step(settings, echo=click.echo))


@ci_group.command(name="comment")
@click.argument("name")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--gitlab", is_flag=True, help="A GitLab merge-request note (CI_API_V4_URL, CI_PROJECT_ID, "
              "CI_MERGE_REQUEST_IID, GITLAB_TOKEN) instead of a GitHub pull-request comment (GITHUB_API_URL, "
              "GITHUB_REPOSITORY, GITHUB_EVENT_PATH, GITHUB_TOKEN).")
def ci_comment(name: str, file: Any, gitlab: bool) -> None:
    """Create or update the ONE pull-request comment marked NAME with the Markdown in FILE (- for
    standard input), e.g. `gitops diff --base main --output markdown > d.md && gitops ci comment diff d.md`."""
    from gitops.ci import action, comments

    env = os.environ
    if gitlab:
        iid = env.get("CI_MERGE_REQUEST_IID", "")
        if not iid.isdigit():
            raise GitopsError("CI_MERGE_REQUEST_IID is not set: run this in a merge-request pipeline")
        target = comments.Target(env.get("CI_API_V4_URL", "https://gitlab.com/api/v4"), env.get("CI_PROJECT_ID", ""),
                                 int(iid), forge="gitlab")
        token = env.get("GITLAB_TOKEN", "")
    else:
        number = action.pull_request_number(action.load_event(env.get("GITHUB_EVENT_PATH", "")))
        if number is None:
            raise GitopsError("GITHUB_EVENT_PATH holds no pull_request event: nothing to comment on")
        target = comments.Target(env.get("GITHUB_API_URL", "https://api.github.com"),
                                 env.get("GITHUB_REPOSITORY", ""), number)
        token = env.get("GITHUB_TOKEN", "")
    what, ident = comments.Client(target, token).upsert(name, file.read())
    click.echo(f"{what} comment {ident}")
    _exit(EXIT_OK)


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
