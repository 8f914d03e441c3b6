"""``k8semu ui``: the cluster drawn live in a browser (issue #15), a client of the API like the
CLI (``server``), its page plain HTML and JavaScript shipped in the package (``static/``)."""
