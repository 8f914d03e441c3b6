"""ingress knows how to route HTTP into the cluster: ``render`` turns Ingress objects and their
endpoints into an nginx configuration (pure); ``controller`` is the process of the
ingress-nginx-controller pod: it runs real nginx and reloads it when the rendering changes."""
