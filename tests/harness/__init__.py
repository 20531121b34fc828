"""Real test clusters for gitops: a Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok) and a single-node Docker Swarm.

Standard library only, so that `tests/clusters` runs before any virtualenv exists.
"""
