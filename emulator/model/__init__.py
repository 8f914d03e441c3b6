"""model knows how to validate and relate.

Frozen dataclasses for the Kubernetes objects k8semu understands, plus the pure helpers that
relate them: ``naming`` (every Linux name and generated Kubernetes name), ``network`` (the pod
and service CIDRs as cluster-wide objects), ``ipam``, ``selectors``, ``scheduler`` and the image
``images`` catalogue. Nothing here needs root or touches the machine.
"""
