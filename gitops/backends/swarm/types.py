"""Typed shapes of the Docker Engine API payloads (API 1.41) that the Swarm backend produces.

Every TypedDict mirrors one JSON object of the Engine API, spelled exactly as the API spells it,
so a value built here is sent as is (``POST /services/create`` etc.). ``total=False``: the API
treats a missing key as the zero value, and we only write the keys a compose file sets.

References: https://docs.docker.com/engine/api/v1.41/ (ServiceSpec, NetworkCreate, ConfigSpec,
SecretSpec, VolumeCreate).
"""

from __future__ import annotations

from typing import TypedDict

# -- service ---------------------------------------------------------------------------------------

Labels = dict[str, str]


class Driver(TypedDict, total=False):
    Name: str
    Options: dict[str, str]


class HealthConfig(TypedDict, total=False):
    Test: list[str]
    Interval: int
    Timeout: int
    Retries: int
    StartPeriod: int


class DNSConfig(TypedDict, total=False):
    Nameservers: list[str]
    Search: list[str]
    Options: list[str]


class BindOptions(TypedDict, total=False):
    Propagation: str


class VolumeOptions(TypedDict, total=False):
    NoCopy: bool
    Labels: Labels
    DriverConfig: Driver


class TmpfsOptions(TypedDict, total=False):
    SizeBytes: int
    Mode: int


class Mount(TypedDict, total=False):
    Type: str
    Source: str
    Target: str
    ReadOnly: bool
    Consistency: str
    BindOptions: BindOptions
    VolumeOptions: VolumeOptions
    TmpfsOptions: TmpfsOptions


class FileTarget(TypedDict, total=False):
    Name: str
    UID: str
    GID: str
    Mode: int


class SecretReference(TypedDict, total=False):
    File: FileTarget
    SecretID: str
    SecretName: str


class ConfigReference(TypedDict, total=False):
    File: FileTarget
    ConfigID: str
    ConfigName: str


class Ulimit(TypedDict):
    Name: str
    Soft: int
    Hard: int


class ContainerSpec(TypedDict, total=False):
    Image: str
    Labels: Labels
    Command: list[str]
    Args: list[str]
    Hostname: str
    Env: list[str]
    Dir: str
    User: str
    Groups: list[str]
    TTY: bool
    OpenStdin: bool
    ReadOnly: bool
    Mounts: list[Mount]
    StopSignal: str
    StopGracePeriod: int
    Healthcheck: HealthConfig
    Hosts: list[str]
    DNSConfig: DNSConfig
    Secrets: list[SecretReference]
    Configs: list[ConfigReference]
    Isolation: str
    Init: bool
    Sysctls: dict[str, str]
    CapabilityAdd: list[str]
    CapabilityDrop: list[str]
    Ulimits: list[Ulimit]


class Limit(TypedDict, total=False):
    NanoCPUs: int
    MemoryBytes: int
    Pids: int


class DiscreteResourceSpec(TypedDict):
    Kind: str
    Value: int


class GenericResource(TypedDict, total=False):
    DiscreteResourceSpec: DiscreteResourceSpec


class ResourceObject(TypedDict, total=False):
    NanoCPUs: int
    MemoryBytes: int
    GenericResources: list[GenericResource]


class ResourceRequirements(TypedDict, total=False):
    Limits: Limit
    Reservations: ResourceObject


class RestartPolicy(TypedDict, total=False):
    Condition: str
    Delay: int
    MaxAttempts: int
    Window: int


class SpreadOver(TypedDict):
    SpreadDescriptor: str


class PlacementPreference(TypedDict):
    Spread: SpreadOver


class Placement(TypedDict, total=False):
    Constraints: list[str]
    Preferences: list[PlacementPreference]
    MaxReplicas: int


class NetworkAttachmentConfig(TypedDict, total=False):
    Target: str
    Aliases: list[str]
    DriverOpts: dict[str, str]


class TaskSpec(TypedDict, total=False):
    ContainerSpec: ContainerSpec
    Resources: ResourceRequirements
    RestartPolicy: RestartPolicy
    Placement: Placement
    Networks: list[NetworkAttachmentConfig]
    LogDriver: Driver
    ForceUpdate: int
    Runtime: str


class ReplicatedService(TypedDict, total=False):
    Replicas: int


class ReplicatedJob(TypedDict, total=False):
    MaxConcurrent: int
    TotalCompletions: int


class GlobalService(TypedDict, total=False):
    pass


class ServiceMode(TypedDict, total=False):
    Replicated: ReplicatedService
    Global: GlobalService
    ReplicatedJob: ReplicatedJob
    GlobalJob: GlobalService


class UpdateConfig(TypedDict, total=False):
    Parallelism: int
    Delay: int
    FailureAction: str
    Monitor: int
    MaxFailureRatio: float
    Order: str


class PortConfig(TypedDict, total=False):
    Name: str
    Protocol: str
    TargetPort: int
    PublishedPort: int
    PublishMode: str


class EndpointSpec(TypedDict, total=False):
    Mode: str
    Ports: list[PortConfig]


class ServiceSpec(TypedDict, total=False):
    Name: str
    Labels: Labels
    TaskTemplate: TaskSpec
    Mode: ServiceMode
    UpdateConfig: UpdateConfig
    RollbackConfig: UpdateConfig
    EndpointSpec: EndpointSpec


# -- networks, configs, secrets, volumes -----------------------------------------------------------


class IPAMConfig(TypedDict, total=False):
    Subnet: str
    IPRange: str
    Gateway: str


class IPAM(TypedDict, total=False):
    Driver: str
    Config: list[IPAMConfig]
    Options: dict[str, str]


class NetworkCreate(TypedDict, total=False):
    """``POST /networks/create`` body."""

    Name: str
    Driver: str
    Scope: str
    Internal: bool
    Attachable: bool
    IPAM: IPAM
    EnableIPv6: bool
    Options: dict[str, str]
    Labels: Labels


class ConfigSpec(TypedDict, total=False):
    """``POST /configs/create`` body. ``Data`` is base64."""

    Name: str
    Labels: Labels
    Data: str
    Templating: Driver


class SecretSpec(TypedDict, total=False):
    """``POST /secrets/create`` body *without* ``Data``; see ``translate.SecretObject.payload``."""

    Name: str
    Labels: Labels
    Driver: Driver
    Templating: Driver


class VolumeCreate(TypedDict, total=False):
    """``POST /volumes/create`` body (a node-local object; Swarm creates it on each node)."""

    Name: str
    Driver: str
    DriverOpts: dict[str, str]
    Labels: Labels
