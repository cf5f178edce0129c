from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Member(_message.Message):
    __slots__ = ("name", "raft_addr", "api_addr", "leader", "connected", "version", "peer_addr", "web_addr", "voter", "record_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDR_FIELD_NUMBER: _ClassVar[int]
    API_ADDR_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDR_FIELD_NUMBER: _ClassVar[int]
    WEB_ADDR_FIELD_NUMBER: _ClassVar[int]
    VOTER_FIELD_NUMBER: _ClassVar[int]
    RECORD_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    raft_addr: str
    api_addr: str
    leader: bool
    connected: bool
    version: int
    peer_addr: str
    web_addr: str
    voter: bool
    record_version: int
    def __init__(self, name: _Optional[str] = ..., raft_addr: _Optional[str] = ..., api_addr: _Optional[str] = ..., leader: _Optional[bool] = ..., connected: _Optional[bool] = ..., version: _Optional[int] = ..., peer_addr: _Optional[str] = ..., web_addr: _Optional[str] = ..., voter: _Optional[bool] = ..., record_version: _Optional[int] = ...) -> None: ...

class AddMemberRequest(_message.Message):
    __slots__ = ("name", "raft_addr", "api_addr", "peer_addr", "web_addr", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDR_FIELD_NUMBER: _ClassVar[int]
    API_ADDR_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDR_FIELD_NUMBER: _ClassVar[int]
    WEB_ADDR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    raft_addr: str
    api_addr: str
    peer_addr: str
    web_addr: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., raft_addr: _Optional[str] = ..., api_addr: _Optional[str] = ..., peer_addr: _Optional[str] = ..., web_addr: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListMembersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMembersReply(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[Member]
    def __init__(self, members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ...) -> None: ...

class ClusterStatus(_message.Message):
    __slots__ = ("leader", "term", "quorum", "members", "self", "commit_index", "applied_index", "leader_term", "hosts_up", "vms", "vms_running", "halted", "snapshot_index", "log_entries", "journal_bytes", "cluster_version", "code_version")
    LEADER_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    QUORUM_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SELF_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEADER_TERM_FIELD_NUMBER: _ClassVar[int]
    HOSTS_UP_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    VMS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    HALTED_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_INDEX_FIELD_NUMBER: _ClassVar[int]
    LOG_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    leader: str
    term: int
    quorum: bool
    members: _containers.RepeatedCompositeFieldContainer[Member]
    self: str
    commit_index: int
    applied_index: int
    leader_term: int
    hosts_up: int
    vms: int
    vms_running: int
    halted: str
    snapshot_index: int
    log_entries: int
    journal_bytes: int
    cluster_version: int
    code_version: int
    def __init__(self_, leader: _Optional[str] = ..., term: _Optional[int] = ..., quorum: _Optional[bool] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., self: _Optional[str] = ..., commit_index: _Optional[int] = ..., applied_index: _Optional[int] = ..., leader_term: _Optional[int] = ..., hosts_up: _Optional[int] = ..., vms: _Optional[int] = ..., vms_running: _Optional[int] = ..., halted: _Optional[str] = ..., snapshot_index: _Optional[int] = ..., log_entries: _Optional[int] = ..., journal_bytes: _Optional[int] = ..., cluster_version: _Optional[int] = ..., code_version: _Optional[int] = ...) -> None: ...

class Host(_message.Message):
    __slots__ = ("name", "status", "vms", "cpus", "memory_mib", "memory_free_mib", "cpu_load", "disk_gib", "disk_free_gib", "memory_allocated_mib", "vcpus_allocated", "api_addr", "raft_addr", "last_heard_ago", "version", "memory_available_mib", "lease", "watchdog", "maintenance", "fenced_by", "watchdog_error", "heartbeat_rtt_ms", "cpu_model")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FREE_MIB_FIELD_NUMBER: _ClassVar[int]
    CPU_LOAD_FIELD_NUMBER: _ClassVar[int]
    DISK_GIB_FIELD_NUMBER: _ClassVar[int]
    DISK_FREE_GIB_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ALLOCATED_MIB_FIELD_NUMBER: _ClassVar[int]
    VCPUS_ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    API_ADDR_FIELD_NUMBER: _ClassVar[int]
    RAFT_ADDR_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARD_AGO_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_MIB_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    WATCHDOG_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    FENCED_BY_FIELD_NUMBER: _ClassVar[int]
    WATCHDOG_ERROR_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_RTT_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: str
    vms: _containers.RepeatedScalarFieldContainer[str]
    cpus: int
    memory_mib: int
    memory_free_mib: int
    cpu_load: float
    disk_gib: int
    disk_free_gib: int
    memory_allocated_mib: int
    vcpus_allocated: int
    api_addr: str
    raft_addr: str
    last_heard_ago: float
    version: int
    memory_available_mib: float
    lease: float
    watchdog: float
    maintenance: bool
    fenced_by: str
    watchdog_error: str
    heartbeat_rtt_ms: float
    cpu_model: str
    def __init__(self, name: _Optional[str] = ..., status: _Optional[str] = ..., vms: _Optional[_Iterable[str]] = ..., cpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., memory_free_mib: _Optional[int] = ..., cpu_load: _Optional[float] = ..., disk_gib: _Optional[int] = ..., disk_free_gib: _Optional[int] = ..., memory_allocated_mib: _Optional[int] = ..., vcpus_allocated: _Optional[int] = ..., api_addr: _Optional[str] = ..., raft_addr: _Optional[str] = ..., last_heard_ago: _Optional[float] = ..., version: _Optional[int] = ..., memory_available_mib: _Optional[float] = ..., lease: _Optional[float] = ..., watchdog: _Optional[float] = ..., maintenance: _Optional[bool] = ..., fenced_by: _Optional[str] = ..., watchdog_error: _Optional[str] = ..., heartbeat_rtt_ms: _Optional[float] = ..., cpu_model: _Optional[str] = ...) -> None: ...

class ListHostsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListHostsResponse(_message.Message):
    __slots__ = ("hosts",)
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[Host]
    def __init__(self, hosts: _Optional[_Iterable[_Union[Host, _Mapping]]] = ...) -> None: ...

class GetHostRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Vm(_message.Message):
    __slots__ = ("name", "uuid", "host", "state", "status", "vcpus", "memory_mib", "disk_gib", "ha", "priority", "pending_reasons", "last_host", "version", "observed", "restarts", "relocations", "error", "migrating_to", "migration_error", "failures", "disks", "nics", "imported", "pinned", "restart_needed", "cpu")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    DISK_GIB_FIELD_NUMBER: _ClassVar[int]
    HA_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PENDING_REASONS_FIELD_NUMBER: _ClassVar[int]
    LAST_HOST_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    RELOCATIONS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MIGRATING_TO_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_ERROR_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    DISKS_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    RESTART_NEEDED_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    name: str
    uuid: str
    host: str
    state: str
    status: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    ha: bool
    priority: int
    pending_reasons: _containers.RepeatedScalarFieldContainer[str]
    last_host: str
    version: int
    observed: str
    restarts: int
    relocations: int
    error: str
    migrating_to: str
    migration_error: str
    failures: _containers.RepeatedScalarFieldContainer[str]
    disks: _containers.RepeatedCompositeFieldContainer[Disk]
    nics: _containers.RepeatedCompositeFieldContainer[Nic]
    imported: bool
    pinned: str
    restart_needed: bool
    cpu: str
    def __init__(self, name: _Optional[str] = ..., uuid: _Optional[str] = ..., host: _Optional[str] = ..., state: _Optional[str] = ..., status: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., disk_gib: _Optional[int] = ..., ha: _Optional[bool] = ..., priority: _Optional[int] = ..., pending_reasons: _Optional[_Iterable[str]] = ..., last_host: _Optional[str] = ..., version: _Optional[int] = ..., observed: _Optional[str] = ..., restarts: _Optional[int] = ..., relocations: _Optional[int] = ..., error: _Optional[str] = ..., migrating_to: _Optional[str] = ..., migration_error: _Optional[str] = ..., failures: _Optional[_Iterable[str]] = ..., disks: _Optional[_Iterable[_Union[Disk, _Mapping]]] = ..., nics: _Optional[_Iterable[_Union[Nic, _Mapping]]] = ..., imported: _Optional[bool] = ..., pinned: _Optional[str] = ..., restart_needed: _Optional[bool] = ..., cpu: _Optional[str] = ...) -> None: ...

class Nic(_message.Message):
    __slots__ = ("network", "mac")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    network: str
    mac: str
    def __init__(self, network: _Optional[str] = ..., mac: _Optional[str] = ...) -> None: ...

class Network(_message.Message):
    __slots__ = ("name", "bridge", "hosts", "vms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    bridge: str
    hosts: _containers.RepeatedScalarFieldContainer[str]
    vms: int
    def __init__(self, name: _Optional[str] = ..., bridge: _Optional[str] = ..., hosts: _Optional[_Iterable[str]] = ..., vms: _Optional[int] = ...) -> None: ...

class ListNetworksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListNetworksResponse(_message.Message):
    __slots__ = ("networks",)
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[Network]
    def __init__(self, networks: _Optional[_Iterable[_Union[Network, _Mapping]]] = ...) -> None: ...

class DeleteNetworkRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteNetworkResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Disk(_message.Message):
    __slots__ = ("pool", "volume", "size_gib", "image")
    POOL_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    SIZE_GIB_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    pool: str
    volume: str
    size_gib: int
    image: str
    def __init__(self, pool: _Optional[str] = ..., volume: _Optional[str] = ..., size_gib: _Optional[int] = ..., image: _Optional[str] = ...) -> None: ...

class DiskSpec(_message.Message):
    __slots__ = ("pool", "size_gib", "image")
    POOL_FIELD_NUMBER: _ClassVar[int]
    SIZE_GIB_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    pool: str
    size_gib: int
    image: str
    def __init__(self, pool: _Optional[str] = ..., size_gib: _Optional[int] = ..., image: _Optional[str] = ...) -> None: ...

class Pool(_message.Message):
    __slots__ = ("name", "type", "shared", "path", "source_host", "source_path", "capacity_gib", "free_gib", "allocated_gib", "hosts", "errors")
    class ErrorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HOST_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_GIB_FIELD_NUMBER: _ClassVar[int]
    FREE_GIB_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_GIB_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    shared: bool
    path: str
    source_host: str
    source_path: str
    capacity_gib: float
    free_gib: float
    allocated_gib: int
    hosts: _containers.RepeatedScalarFieldContainer[str]
    errors: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., shared: _Optional[bool] = ..., path: _Optional[str] = ..., source_host: _Optional[str] = ..., source_path: _Optional[str] = ..., capacity_gib: _Optional[float] = ..., free_gib: _Optional[float] = ..., allocated_gib: _Optional[int] = ..., hosts: _Optional[_Iterable[str]] = ..., errors: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListPoolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPoolsResponse(_message.Message):
    __slots__ = ("pools",)
    POOLS_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[Pool]
    def __init__(self, pools: _Optional[_Iterable[_Union[Pool, _Mapping]]] = ...) -> None: ...

class DeletePoolRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeletePoolResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MigrateVmRequest(_message.Message):
    __slots__ = ("name", "to", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    to: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., to: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class HostVerdict(_message.Message):
    __slots__ = ("host", "eligible", "reason", "score")
    HOST_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    host: str
    eligible: bool
    reason: str
    score: float
    def __init__(self, host: _Optional[str] = ..., eligible: _Optional[bool] = ..., reason: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("vm", "choice", "hosts")
    VM_FIELD_NUMBER: _ClassVar[int]
    CHOICE_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    vm: str
    choice: str
    hosts: _containers.RepeatedCompositeFieldContainer[HostVerdict]
    def __init__(self, vm: _Optional[str] = ..., choice: _Optional[str] = ..., hosts: _Optional[_Iterable[_Union[HostVerdict, _Mapping]]] = ...) -> None: ...

class ListAlarmsRequest(_message.Message):
    __slots__ = ("all",)
    ALL_FIELD_NUMBER: _ClassVar[int]
    all: bool
    def __init__(self, all: _Optional[bool] = ...) -> None: ...

class Alarm(_message.Message):
    __slots__ = ("key", "kind", "severity", "subject", "message", "raised_at", "cleared_at", "acked_by", "acked_at", "local")
    KEY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RAISED_AT_FIELD_NUMBER: _ClassVar[int]
    CLEARED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKED_BY_FIELD_NUMBER: _ClassVar[int]
    ACKED_AT_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    key: str
    kind: str
    severity: str
    subject: str
    message: str
    raised_at: float
    cleared_at: float
    acked_by: str
    acked_at: float
    local: bool
    def __init__(self, key: _Optional[str] = ..., kind: _Optional[str] = ..., severity: _Optional[str] = ..., subject: _Optional[str] = ..., message: _Optional[str] = ..., raised_at: _Optional[float] = ..., cleared_at: _Optional[float] = ..., acked_by: _Optional[str] = ..., acked_at: _Optional[float] = ..., local: _Optional[bool] = ...) -> None: ...

class ListAlarmsResponse(_message.Message):
    __slots__ = ("alarms",)
    ALARMS_FIELD_NUMBER: _ClassVar[int]
    alarms: _containers.RepeatedCompositeFieldContainer[Alarm]
    def __init__(self, alarms: _Optional[_Iterable[_Union[Alarm, _Mapping]]] = ...) -> None: ...

class AckAlarmRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class WhatIfRequest(_message.Message):
    __slots__ = ("host", "maintenance")
    HOST_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    host: str
    maintenance: bool
    def __init__(self, host: _Optional[str] = ..., maintenance: _Optional[bool] = ...) -> None: ...

class WhatIfVm(_message.Message):
    __slots__ = ("name", "target", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    target: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., target: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WhatIfReport(_message.Message):
    __slots__ = ("host", "maintenance", "vms")
    HOST_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    host: str
    maintenance: bool
    vms: _containers.RepeatedCompositeFieldContainer[WhatIfVm]
    def __init__(self, host: _Optional[str] = ..., maintenance: _Optional[bool] = ..., vms: _Optional[_Iterable[_Union[WhatIfVm, _Mapping]]] = ...) -> None: ...

class SetMaintenanceRequest(_message.Message):
    __slots__ = ("name", "on")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ON_FIELD_NUMBER: _ClassVar[int]
    name: str
    on: bool
    def __init__(self, name: _Optional[str] = ..., on: _Optional[bool] = ...) -> None: ...

class Rule(_message.Message):
    __slots__ = ("name", "kind", "strength", "vms", "hosts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    strength: str
    vms: _containers.RepeatedScalarFieldContainer[str]
    hosts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., strength: _Optional[str] = ..., vms: _Optional[_Iterable[str]] = ..., hosts: _Optional[_Iterable[str]] = ...) -> None: ...

class ListRulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRulesResponse(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[Rule]
    def __init__(self, rules: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ...) -> None: ...

class DeleteRuleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteRuleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BalanceRequest(_message.Message):
    __slots__ = ("apply",)
    APPLY_FIELD_NUMBER: _ClassVar[int]
    apply: bool
    def __init__(self, apply: _Optional[bool] = ...) -> None: ...

class BalanceMove(_message.Message):
    __slots__ = ("vm", "source", "target", "gain")
    VM_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    GAIN_FIELD_NUMBER: _ClassVar[int]
    vm: str
    source: str
    target: str
    gain: float
    def __init__(self, vm: _Optional[str] = ..., source: _Optional[str] = ..., target: _Optional[str] = ..., gain: _Optional[float] = ...) -> None: ...

class BalanceReport(_message.Message):
    __slots__ = ("imbalance", "imbalance_after", "moves", "applied")
    IMBALANCE_FIELD_NUMBER: _ClassVar[int]
    IMBALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    imbalance: float
    imbalance_after: float
    moves: _containers.RepeatedCompositeFieldContainer[BalanceMove]
    applied: bool
    def __init__(self, imbalance: _Optional[float] = ..., imbalance_after: _Optional[float] = ..., moves: _Optional[_Iterable[_Union[BalanceMove, _Mapping]]] = ..., applied: _Optional[bool] = ...) -> None: ...

class SetVmStateRequest(_message.Message):
    __slots__ = ("name", "state", "expect_version", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPECT_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: str
    expect_version: int
    request_id: str
    def __init__(self, name: _Optional[str] = ..., state: _Optional[str] = ..., expect_version: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListIncidentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IncidentVm(_message.Message):
    __slots__ = ("name", "host", "placed_at", "running_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    host: str
    placed_at: float
    running_at: float
    def __init__(self, name: _Optional[str] = ..., host: _Optional[str] = ..., placed_at: _Optional[float] = ..., running_at: _Optional[float] = ...) -> None: ...

class Incident(_message.Message):
    __slots__ = ("id", "host", "last_heard", "declared_at", "fenced_at", "fenced_by", "returned_at", "vms", "open")
    ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARD_FIELD_NUMBER: _ClassVar[int]
    DECLARED_AT_FIELD_NUMBER: _ClassVar[int]
    FENCED_AT_FIELD_NUMBER: _ClassVar[int]
    FENCED_BY_FIELD_NUMBER: _ClassVar[int]
    RETURNED_AT_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    id: int
    host: str
    last_heard: float
    declared_at: float
    fenced_at: float
    fenced_by: str
    returned_at: float
    vms: _containers.RepeatedCompositeFieldContainer[IncidentVm]
    open: bool
    def __init__(self, id: _Optional[int] = ..., host: _Optional[str] = ..., last_heard: _Optional[float] = ..., declared_at: _Optional[float] = ..., fenced_at: _Optional[float] = ..., fenced_by: _Optional[str] = ..., returned_at: _Optional[float] = ..., vms: _Optional[_Iterable[_Union[IncidentVm, _Mapping]]] = ..., open: _Optional[bool] = ...) -> None: ...

class ListIncidentsResponse(_message.Message):
    __slots__ = ("incidents",)
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[Incident]
    def __init__(self, incidents: _Optional[_Iterable[_Union[Incident, _Mapping]]] = ...) -> None: ...

class GetIncidentRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("backlog", "follow")
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    backlog: int
    follow: bool
    def __init__(self, backlog: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("seq", "ts", "kind", "message")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    ts: float
    kind: str
    message: str
    def __init__(self, seq: _Optional[int] = ..., ts: _Optional[float] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Policy(_message.Message):
    __slots__ = ("settings", "version")
    class SettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    settings: _containers.ScalarMap[str, float]
    version: int
    def __init__(self, settings: _Optional[_Mapping[str, float]] = ..., version: _Optional[int] = ...) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ("changes", "expect_version", "request_id")
    class ChangesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    EXPECT_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.ScalarMap[str, float]
    expect_version: int
    request_id: str
    def __init__(self, changes: _Optional[_Mapping[str, float]] = ..., expect_version: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class ResizeVmRequest(_message.Message):
    __slots__ = ("name", "vcpus", "memory_mib", "expect_version", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    EXPECT_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    vcpus: int
    memory_mib: int
    expect_version: int
    request_id: str
    def __init__(self, name: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., expect_version: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class ImportVmRequest(_message.Message):
    __slots__ = ("name", "host", "ha", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    HA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    host: str
    ha: bool
    request_id: str
    def __init__(self, name: _Optional[str] = ..., host: _Optional[str] = ..., ha: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class InspectDomainRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ConsoleRequest(_message.Message):
    __slots__ = ("name", "tail_lines", "after", "input")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAIL_LINES_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    tail_lines: int
    after: int
    input: bytes
    def __init__(self, name: _Optional[str] = ..., tail_lines: _Optional[int] = ..., after: _Optional[int] = ..., input: _Optional[bytes] = ...) -> None: ...

class ConsoleOutput(_message.Message):
    __slots__ = ("host", "text", "offset")
    HOST_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    host: str
    text: str
    offset: int
    def __init__(self, host: _Optional[str] = ..., text: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class InspectedDomain(_message.Message):
    __slots__ = ("xml", "running", "managed")
    XML_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    MANAGED_FIELD_NUMBER: _ClassVar[int]
    xml: str
    running: bool
    managed: bool
    def __init__(self, xml: _Optional[str] = ..., running: _Optional[bool] = ..., managed: _Optional[bool] = ...) -> None: ...

class CreateVmRequest(_message.Message):
    __slots__ = ("name", "vcpus", "memory_mib", "disk_gib", "ha", "priority", "stopped", "request_id", "disks", "networks", "cpu")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    DISK_GIB_FIELD_NUMBER: _ClassVar[int]
    HA_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DISKS_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    name: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    ha: bool
    priority: int
    stopped: bool
    request_id: str
    disks: _containers.RepeatedCompositeFieldContainer[DiskSpec]
    networks: _containers.RepeatedScalarFieldContainer[str]
    cpu: str
    def __init__(self, name: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., disk_gib: _Optional[int] = ..., ha: _Optional[bool] = ..., priority: _Optional[int] = ..., stopped: _Optional[bool] = ..., request_id: _Optional[str] = ..., disks: _Optional[_Iterable[_Union[DiskSpec, _Mapping]]] = ..., networks: _Optional[_Iterable[str]] = ..., cpu: _Optional[str] = ...) -> None: ...

class VmRequest(_message.Message):
    __slots__ = ("name", "expect_version", "request_id", "delete_disks")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECT_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DELETE_DISKS_FIELD_NUMBER: _ClassVar[int]
    name: str
    expect_version: int
    request_id: str
    delete_disks: bool
    def __init__(self, name: _Optional[str] = ..., expect_version: _Optional[int] = ..., request_id: _Optional[str] = ..., delete_disks: _Optional[bool] = ...) -> None: ...

class ListVmsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListVmsResponse(_message.Message):
    __slots__ = ("vms",)
    VMS_FIELD_NUMBER: _ClassVar[int]
    vms: _containers.RepeatedCompositeFieldContainer[Vm]
    def __init__(self, vms: _Optional[_Iterable[_Union[Vm, _Mapping]]] = ...) -> None: ...

class DeleteVmResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("host", "cpu_load", "memory_available_mib", "disk_free_gib", "observed", "observed_versions", "errors", "rtt_ms", "code_version")
    class ObservedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ObservedVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ErrorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOST_FIELD_NUMBER: _ClassVar[int]
    CPU_LOAD_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_MIB_FIELD_NUMBER: _ClassVar[int]
    DISK_FREE_GIB_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    host: str
    cpu_load: float
    memory_available_mib: float
    disk_free_gib: float
    observed: _containers.ScalarMap[str, str]
    observed_versions: _containers.ScalarMap[str, int]
    errors: _containers.ScalarMap[str, str]
    rtt_ms: float
    code_version: int
    def __init__(self, host: _Optional[str] = ..., cpu_load: _Optional[float] = ..., memory_available_mib: _Optional[float] = ..., disk_free_gib: _Optional[float] = ..., observed: _Optional[_Mapping[str, str]] = ..., observed_versions: _Optional[_Mapping[str, int]] = ..., errors: _Optional[_Mapping[str, str]] = ..., rtt_ms: _Optional[float] = ..., code_version: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("leader_term", "lease_seconds", "message", "revision")
    LEADER_TERM_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    leader_term: int
    lease_seconds: float
    message: str
    revision: int
    def __init__(self, leader_term: _Optional[int] = ..., lease_seconds: _Optional[float] = ..., message: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class LiveMetricsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HostLive(_message.Message):
    __slots__ = ("host", "cpu_load", "memory_available_mib", "disk_free_gib", "last_heard_ago", "lease_left", "heartbeat_rtt_ms", "code_version")
    HOST_FIELD_NUMBER: _ClassVar[int]
    CPU_LOAD_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_MIB_FIELD_NUMBER: _ClassVar[int]
    DISK_FREE_GIB_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARD_AGO_FIELD_NUMBER: _ClassVar[int]
    LEASE_LEFT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_RTT_MS_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    host: str
    cpu_load: float
    memory_available_mib: float
    disk_free_gib: float
    last_heard_ago: float
    lease_left: float
    heartbeat_rtt_ms: float
    code_version: int
    def __init__(self, host: _Optional[str] = ..., cpu_load: _Optional[float] = ..., memory_available_mib: _Optional[float] = ..., disk_free_gib: _Optional[float] = ..., last_heard_ago: _Optional[float] = ..., lease_left: _Optional[float] = ..., heartbeat_rtt_ms: _Optional[float] = ..., code_version: _Optional[int] = ...) -> None: ...

class LiveMetricsResponse(_message.Message):
    __slots__ = ("hosts",)
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[HostLive]
    def __init__(self, hosts: _Optional[_Iterable[_Union[HostLive, _Mapping]]] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Identity(_message.Message):
    __slots__ = ("kind", "name", "role", "peer")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    role: str
    peer: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[str] = ..., peer: _Optional[str] = ...) -> None: ...

class TokenInfo(_message.Message):
    __slots__ = ("name", "role", "owner", "created_at", "expires_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    owner: str
    created_at: float
    expires_at: float
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., owner: _Optional[str] = ..., created_at: _Optional[float] = ..., expires_at: _Optional[float] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("name", "role", "ttl_seconds", "owner", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    ttl_seconds: float
    owner: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., ttl_seconds: _Optional[float] = ..., owner: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreatedToken(_message.Message):
    __slots__ = ("token", "info")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    token: str
    info: TokenInfo
    def __init__(self, token: _Optional[str] = ..., info: _Optional[_Union[TokenInfo, _Mapping]] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenInfo]
    def __init__(self, tokens: _Optional[_Iterable[_Union[TokenInfo, _Mapping]]] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("user", "password")
    USER_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    user: str
    password: str
    def __init__(self, user: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class GetDirectoryRolesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DirectoryRoles(_message.Message):
    __slots__ = ("roles",)
    class RolesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ROLES_FIELD_NUMBER: _ClassVar[int]
    roles: _containers.ScalarMap[str, str]
    def __init__(self, roles: _Optional[_Mapping[str, str]] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("vm", "range")
    VM_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    vm: str
    range: str
    def __init__(self, vm: _Optional[str] = ..., range: _Optional[str] = ...) -> None: ...

class HistorySeries(_message.Message):
    __slots__ = ("name", "values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, name: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class HistoryReply(_message.Message):
    __slots__ = ("found", "step", "t", "series")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    T_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    found: bool
    step: float
    t: _containers.RepeatedScalarFieldContainer[float]
    series: _containers.RepeatedCompositeFieldContainer[HistorySeries]
    def __init__(self, found: _Optional[bool] = ..., step: _Optional[float] = ..., t: _Optional[_Iterable[float]] = ..., series: _Optional[_Iterable[_Union[HistorySeries, _Mapping]]] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("name", "role", "password")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    password: str
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class UserInfo(_message.Message):
    __slots__ = ("name", "role", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    created_at: float
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., created_at: _Optional[float] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[UserInfo]
    def __init__(self, users: _Optional[_Iterable[_Union[UserInfo, _Mapping]]] = ...) -> None: ...

class DeleteUserRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteUserResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetPasswordRequest(_message.Message):
    __slots__ = ("name", "password")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    name: str
    password: str
    def __init__(self, name: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...
