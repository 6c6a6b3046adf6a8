"""The official Kubernetes Python client through airlock: the scenarios of
k8s_gateway.rs (list, create, a denied read) with the client's own API.
Prints one JSON object with what it saw; the Rust test asserts on it and on
the fixture's request log. Environment: AIRLOCK_K8S_URL (the gateway URL of
a connection), AIRLOCK_TOKEN, AIRLOCK_CA (the gateway's certificate)."""

import json
import os

from kubernetes import client

configuration = client.Configuration()
configuration.host = os.environ["AIRLOCK_K8S_URL"]
configuration.api_key = {"authorization": "Bearer " + os.environ["AIRLOCK_TOKEN"]}
configuration.ssl_ca_cert = os.environ["AIRLOCK_CA"]
api = client.CoreV1Api(client.ApiClient(configuration))

seen = {}
pods = api.list_namespaced_pod("default")
seen["pods"] = [pod.metadata.name for pod in pods.items]
created = api.create_namespaced_config_map(
    "default",
    client.V1ConfigMap(metadata=client.V1ObjectMeta(name="from-python"), data={"lang": "python"}),
)
seen["created"] = created.metadata.name
seen["resource_version"] = created.metadata.resource_version
try:
    api.read_namespaced_secret("db-creds", "default")
    seen["secret"] = "read"
except client.exceptions.ApiException as error:
    body = json.loads(error.body)
    seen["secret"] = {"status": error.status, "reason": body.get("reason"), "message": body.get("message"), "kind": body.get("kind")}
print(json.dumps(seen))
