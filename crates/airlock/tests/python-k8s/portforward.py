"""Port-forward with the official Kubernetes Python client (PyPI
`kubernetes`, its WebSocket `v4.channel.k8s.io` port-forward) through
airlock: opens a forward to pod web-1's port AIRLOCK_POD_PORT, sends one
line, prints what came back as JSON. Environment: AIRLOCK_K8S_URL,
AIRLOCK_TOKEN, AIRLOCK_CA, AIRLOCK_POD_PORT."""

import json
import os

from kubernetes import client
from kubernetes.stream import portforward

configuration = client.Configuration()
configuration.host = os.environ["AIRLOCK_K8S_URL"]
configuration.api_key = {"authorization": "Bearer " + os.environ["AIRLOCK_TOKEN"]}
configuration.ssl_ca_cert = os.environ["AIRLOCK_CA"]
api = client.CoreV1Api(client.ApiClient(configuration))
port = int(os.environ["AIRLOCK_POD_PORT"])

forward = portforward(api.connect_get_namespaced_pod_portforward, "web-1", "default", ports=str(port))
sock = forward.socket(port)
sock.settimeout(20)
sock.sendall(b"ping through the tunnel\n")
received = b""
while not received.endswith(b"\n"):
    data = sock.recv(4096)
    if not data:
        break
    received += data
sock.close()
error = forward.error(port)
forward.close()
print(json.dumps({"received": received.decode(), "error": error}))
