"""cluster knows how to decide.

``store`` holds the desired objects and the status of every pod; ``controllers`` are the
reconcile loops of kube-controller-manager and kube-scheduler in miniature (Deployment ->
ReplicaSet -> Pods, scheduling, address assignment); ``admission`` refuses what the API server
would refuse; ``render`` prints objects as kubectl does. All pure: the runtime calls them.
"""
