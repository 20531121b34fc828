"""The daemon's Prometheus metrics, in a registry of its own (nothing process-global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

DURATIONS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconciles = Counter("gitops_reconcile", "Reconciles by app and result "
                                  "(synced, applied, rolled-back, failed, held, out-of-sync).",
                                  ["app", "result"], registry=r)
        self.reconcile_seconds = Histogram("gitops_reconcile_duration_seconds", "One app's reconcile, end to end.",
                                           ["app"], buckets=DURATIONS, registry=r)
        self.apply_seconds = Histogram("gitops_apply_duration_seconds", "Apply and rollout watch of one app.",
                                       ["app"], buckets=DURATIONS, registry=r)
        self.syncs = Counter("gitops_sync", "Applies that changed the target.", ["app"], registry=r)
        self.rollbacks = Counter("gitops_rollback", "Automatic rollbacks after a failed rollout.", ["app"], registry=r)
        self.self_heals = Counter("gitops_self_heal", "Applies that reverted drift (no new revision).", ["app"],
                                  registry=r)
        self.drift = Counter("gitops_drift_detected", "Reconciles that found the target differing from git "
                             "at a revision already applied.", ["app"], registry=r)
        self.git_seconds = Histogram("gitops_git_fetch_duration_seconds", "Remote checks and fetches of the "
                                     "repository.", ["operation"], buckets=DURATIONS, registry=r)
        self.git_errors = Counter("gitops_git_errors", "Failed remote checks and fetches.", registry=r)
        self.webhooks = Counter("gitops_webhook_requests", "Webhook requests by provider and HTTP status.",
                                ["provider", "status"], registry=r)
        self.synced = Gauge("gitops_app_synced", "1 when the app matches git, 0 when it does not, "
                            "-1 when unknown.", ["app"], registry=r)
        self.healthy = Gauge("gitops_app_healthy", "1 when every object of the app is healthy, else 0.", ["app"],
                             registry=r)
        self.notify_delivered = Counter("gitops_notification_delivered", "Notifications a provider accepted (2xx), "
                                        "by provider and trigger.", ["provider", "trigger"], registry=r)
        self.notify_failures = Counter("gitops_notification_failed_attempts", "Delivery attempts that failed "
                                       "(each retry counts).", ["provider"], registry=r)
        self.notify_dropped = Counter("gitops_notification_dropped", "Notifications given up, by provider and "
                                      "reason (retries-exhausted, rejected, queue-full, stopped).",
                                      ["provider", "reason"], registry=r)
        self.notify_queue = Gauge("gitops_notification_queue", "Deliveries waiting (first attempts and retries).",
                                  registry=r)
        self.leader = Gauge("gitops_leader", "1 while this daemon acts (is the leader of its shard).", registry=r)
        self.shard = Gauge("gitops_shard", "The shard this daemon serves, and how many there are.",
                           ["index", "count"], registry=r)

    def text(self) -> bytes:
        return bytes(generate_latest(self.registry))
