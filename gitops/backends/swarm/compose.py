"""Shared pieces of the compose -> Swarm translation: the naming rules, the translation context
that collects diagnostics, and readers for compose values in their several accepted forms.

Every reader takes the context and the JSON pointer parts of the value; a malformed value becomes
an error diagnostic at that pointer and a neutral result, so translation goes on and reports every
problem at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shlex
from collections.abc import Callable, Mapping
from typing import Any, Literal

from gitops.model import Diagnostic, Diagnostics, Severity
from gitops.validate.compose_rules import PRUNE_KEY
from gitops.validate.units import duration_ns

STACK_LABEL = "com.docker.stack.namespace"
IMAGE_LABEL = "com.docker.stack.image"
DEFAULT_NETWORK_DRIVER = "overlay"
DEFAULT_FILE_MODE = 0o444
HASH_LENGTH = 10
MAX_OBJECT_NAME = 64  # Swarm refuses longer config and secret names

ReadFile = Callable[[str], bytes]
"""Reads a file named by the compose file (relative to the compose file's directory)."""
Decrypt = Callable[[bytes, str, str], bytes]
"""The plain text of a SOPS-encrypted file's content: (content, SOPS format, file shown in errors)."""

USER_DEFINED_EXCLUDED = frozenset({"default", "bridge", "host", "none"})


# -- helpers ---------------------------------------------------------------------------------------


def pointer(*parts: object) -> str:
    """A JSON pointer (RFC 6901) from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def scope(stack: str, name: str) -> str:
    return f"{stack}_{name}"


def content_hash(data: bytes) -> str:
    """The name suffix of a config: the first :data:`HASH_LENGTH` hex digits of the SHA-256 of its
    content (a config's content is no secret: plans show it)."""
    return hashlib.sha256(data).hexdigest()[:HASH_LENGTH]


def keyed_hash(data: bytes, key: bytes) -> str:
    """The name suffix of a secret: HMAC-SHA256 of its content under the app's naming key. A plain
    hash of a low-entropy secret, shown in a plan posted to a public pull request, could be
    guessed offline; without the key, the suffix says nothing about the content."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:HASH_LENGTH]


#: The secret naming key of translations without an app state (``gitops diff``, tests): random
#: per process and never stored, so equal content gives equal names within one run, and the names
#: say nothing about the content.
PROCESS_KEY = secrets.token_bytes(32)

SecretKey = bytes | Literal["plain"] | None
"""How secrets are named (``translate(secret_key=...)``): an HMAC key (the app's naming key);
None, :data:`PROCESS_KEY`; ``"plain"``, the plain SHA-256 of the time before keyed names (kept
only to reproduce records and stacks of that time)."""


def naming_key(secret_key: SecretKey) -> bytes | None:
    """The HMAC key a :data:`SecretKey` stands for (None: the plain hash)."""
    if isinstance(secret_key, bytes):
        return secret_key
    return PROCESS_KEY if secret_key is None else None  # None: "plain"


def object_suffix(section: str, data: bytes, key: bytes | None) -> str:
    """The content suffix of a config or secret (``section``: "configs" or "secrets"); ``key``
    None gives secrets the plain hash too (see :data:`SecretKey`)."""
    if section == "secrets" and key is not None:
        return keyed_hash(data, key)
    return content_hash(data)


def stringify(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_user_defined_network(target: str) -> bool:
    return target not in USER_DEFINED_EXCLUDED and not target.startswith("container:")


class Context:
    def __init__(self, stack: str, doc: Mapping[str, Any], read_file: ReadFile | None,
                 project_dir: str | None, hash_names: bool, file: str | None,
                 home_dir: str | None = None, secret_key: bytes | None = None) -> None:
        self.stack = stack
        self.doc = doc
        self.read_file = read_file
        self.project_dir = project_dir
        self.home_dir = home_dir
        self.hash_names = hash_names
        self.secret_key = secret_key
        self.file = file
        self.diagnostics = Diagnostics()
        self.config_names: dict[str, str] = {}
        self.secret_names: dict[str, str] = {}
        self.sensitive: frozenset[str] = frozenset()  # x-gitops-sensitive at the top: every service's
        self.decrypt: Decrypt | None = None  # SOPS-encrypted secret files (None: such a file is an error)

    def error(self, message: str, *where: object) -> None:
        self.diagnostics.add(Diagnostic(Severity.ERROR, message, file=self.file, pointer=pointer(*where)))

    def warning(self, message: str, *where: object) -> None:
        self.diagnostics.add(Diagnostic(Severity.WARNING, message, file=self.file, pointer=pointer(*where)))

    def section(self, name: str) -> dict[str, Any]:
        value = self.doc.get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.error(f"{name} must be a mapping", name)
            return {}
        return {str(k): (v if v is not None else {}) for k, v in value.items()}


def read_mapping(ctx: Context, value: object, *where: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        ctx.error("must be a mapping", *where)
        return {}
    return {str(k): v for k, v in value.items()}


def read_string_list(ctx: Context, value: object, *where: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [stringify(v) for v in value]
    ctx.error("must be a string or a list of strings", *where)
    return []


def read_command(ctx: Context, value: object, *where: object) -> list[str] | None:
    """``command``/``entrypoint``: a list as is, a string split like a shell would (no expansion)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as err:
            ctx.error(f"cannot split command: {err}", *where)
            return None
    if isinstance(value, (list, tuple)):
        return [stringify(v) for v in value]
    ctx.error("must be a string or a list of strings", *where)
    return None


def read_key_values(ctx: Context, value: object, *where: object,
                allow_bare: bool = True) -> dict[str, str | None]:
    """``labels``/``environment``/``sysctls`` in map form or ``KEY=value`` list form."""
    if value is None:
        return {}
    result: dict[str, str | None] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            result[str(key)] = None if item is None else stringify(item)
        return result
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if not isinstance(item, str):
                ctx.error("list entries must be KEY=value strings", *where, index)
                continue
            key, sep, rest = item.partition("=")
            result[key] = rest if sep else (None if allow_bare else "")
        return result
    ctx.error("must be a mapping or a list of KEY=value strings", *where)
    return {}


def read_labels(ctx: Context, value: object, *where: object) -> dict[str, str]:
    return {k: (v or "") for k, v in read_key_values(ctx, value, *where, allow_bare=False).items()}


def with_stack_label(ctx: Context, labels: Mapping[str, str]) -> dict[str, str]:
    result = dict(labels)
    result[STACK_LABEL] = ctx.stack
    return result


def read_duration(ctx: Context, value: object, *where: object) -> int | None:
    if value is None:
        return None
    try:
        return duration_ns(value)
    except ValueError as err:
        ctx.error(str(err), *where)
        return None


def read_names(ctx: Context, value: object, *where: object) -> frozenset[str]:
    """A list of environment variable names (``x-gitops-sensitive``)."""
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        ctx.error("must be a list of environment variable names", *where)
        return frozenset()
    return frozenset(v.strip() for v in value)


def read_int(ctx: Context, value: object, *where: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        ctx.error("must be an integer", *where)
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    ctx.error("must be an integer", *where)
    return None


def read_bool(ctx: Context, value: object, *where: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    ctx.error("must be true or false", *where)
    return None


#: Compose extension key by which a service, network, volume, config or secret opts out of pruning.


def read_prune(ctx: Context, config: Mapping[str, Any], *where: object) -> bool:
    """``x-gitops-prune: false`` keeps the object when it leaves the compose file (default true)."""
    return read_bool(ctx, config.get(PRUNE_KEY), *where, PRUNE_KEY) is not False


def read_external(ctx: Context, key: str, config: Mapping[str, Any], *where: object) -> tuple[bool, str | None]:
    """``external: true`` or the legacy ``external: {name: x}``; returns (external, explicit name)."""
    external = config.get("external")
    name = config.get("name")
    if isinstance(external, Mapping):  # deprecated: the compose rule table warns
        return True, str(external.get("name") or name or key)
    flag = read_bool(ctx, external, *where, "external")
    if flag:
        return True, str(name or key)
    return False, (str(name) if name else None)



def network_target(ctx: Context, key: str, networks: Mapping[str, Any]) -> str:
    config = networks.get(key)
    if isinstance(config, Mapping):
        _, name = read_external(ctx, key, config, "networks", key)
        if name:
            return name
    return scope(ctx.stack, key)



def read_file_mode(ctx: Context, value: object, *where: object) -> int | None:
    if isinstance(value, bool):
        ctx.error("mode must be a number", *where)
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 8)
        except ValueError:
            pass
    ctx.error("mode must be a number (octal in a string: '0440')", *where)
    return None

