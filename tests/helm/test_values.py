"""Values the chart refuses, each with a message that says what is wrong and what to set, and
the choices it offers (existing Secrets, public keys, the autoscaler, no sidecar)."""

from __future__ import annotations

import base64

import helm_python
import pytest

from tests.helm import chart

PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
REDIS = {"url": "redis://redis.chat.svc:6379/0"}
POSTGRES = {"url": "postgresql+asyncpg://vigil:pw@postgres.chat.svc:5432/vigil"}

REFUSED_BY_THE_TEMPLATES = {
    "three replicas without Redis": (
        {"replicaCount": 3},
        "3 replicas need Redis: set redis.url or redis.existingSecret. Without it each replica "
        "keeps its own in-process event log",
    ),
    "an autoscaler that may reach 4 replicas without Redis": (
        {"autoscaling": {"enabled": True, "maxReplicas": 4}},
        "4 replicas need Redis",
    ),
    "three replicas with Redis but SQLite": (
        {"replicaCount": 3, "redis": REDIS},
        "3 replicas need PostgreSQL: set database.url or database.existingSecret",
    ),
    "a termination grace shorter than the drain": (
        {"backend": {"terminationGracePeriodSeconds": 10}},
        "backend.terminationGracePeriodSeconds=10 is shorter than preStopSleepSeconds + "
        "shutdownGraceSeconds = 25",
    ),
    "the openai provider without its key": (
        {"provider": {"name": "openai"}},
        "provider.name=openai in production mode needs provider.openai.apiKey",
    ),
    "both an HS256 secret and a public key": (
        {"auth": {"jwtSecret": "s" * 32, "jwtPublicKey": PEM}},
        "auth.jwtSecret and auth.jwtPublicKey are both set",
    ),
    "a setting the chart manages, given in config": (
        {"config": {"VIGIL_DATABASE_URL": "sqlite+aiosqlite:///x.db"}},
        "config.VIGIL_DATABASE_URL is set by the chart from its own values",
    ),
    "an autoscaler whose minimum is above its maximum": (
        {
            "replicaCount": 1,
            "redis": REDIS,
            "database": POSTGRES,
            "autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3},
        },
        "autoscaling.minReplicas=5 is above autoscaling.maxReplicas=3",
    ),
}

REFUSED_BY_THE_SCHEMA = {
    "a replica count that is not a number": (
        {"replicaCount": "three"},
        "at '/replicaCount': got string, want integer",
    ),
    "zero replicas": ({"replicaCount": 0}, "at '/replicaCount': minimum: got 0, want 1"),
    "a misspelt key": ({"replikaCount": 3}, "additional properties 'replikaCount' not allowed"),
    "an unknown mode": ({"mode": "prod"}, "at '/mode': value must be one of 'dev', 'production'"),
    "a Redis URL of another scheme": (
        {"redis": {"url": "http://redis:6379"}},
        "at '/redis/url': 'http://redis:6379' does not match pattern",
    ),
    "a database driver the backend does not support": (
        {"database": {"url": "postgres://db/vigil"}},
        "at '/database/url': 'postgres://db/vigil' does not match pattern",
    ),
    "running as root": (
        {"podSecurityContext": {"runAsNonRoot": False, "runAsUser": 0}},
        "at '/podSecurityContext/runAsNonRoot': value must be true",
    ),
    "a scrape interval that is not a duration": (
        {"serviceMonitor": {"interval": "15 seconds"}},
        "at '/serviceMonitor/interval': '15 seconds' does not match pattern",
    ),
    "a config key that is not a Vigil or OpenTelemetry setting": (
        {"config": {"max_runs": "3"}},
        "invalid propertyName 'max_runs'",
    ),
    "a setting value that is not a string": (
        {"config": {"VIGIL_MAX_RUNS_PER_USER": 3}},
        "at '/config/VIGIL_MAX_RUNS_PER_USER': got number, want string",
    ),
}


@pytest.mark.parametrize(
    ("values", "message"), REFUSED_BY_THE_TEMPLATES.values(), ids=REFUSED_BY_THE_TEMPLATES.keys()
)
def test_the_chart_refuses_to_render_with_a_message_saying_why(values, message):
    with pytest.raises(helm_python.HelmRenderError) as refused:
        chart.render(values)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("values", "message"), REFUSED_BY_THE_SCHEMA.values(), ids=REFUSED_BY_THE_SCHEMA.keys()
)
def test_the_schema_refuses_a_wrong_value_naming_the_key(values, message):
    with pytest.raises(helm_python.HelmValuesError) as refused:
        chart.render(values)
    assert "values don't meet the specifications of the schema" in str(refused.value)
    assert message in str(refused.value)


def test_the_schema_refusal_also_stops_helm_lint():
    report = chart.lint({"replicaCount": "three"})
    assert any("want integer" in error for error in report["errors"]), report


def test_three_replicas_render_with_redis_and_postgresql():
    objects = chart.render({"replicaCount": 3, "redis": REDIS, "database": POSTGRES})
    assert chart.one(objects, "Deployment")["spec"]["replicas"] == 3
    secret = chart.one(objects, "Secret")["data"]
    assert base64.b64decode(secret["redis-url"]).decode() == REDIS["url"]
    assert base64.b64decode(secret["database-url"]).decode() == POSTGRES["url"]


def test_without_a_key_the_chart_generates_a_48_character_jwt_secret():
    secret = chart.one(chart.default_objects(), "Secret")["data"]
    assert set(secret) == {"jwt-secret"}
    key = base64.b64decode(secret["jwt-secret"]).decode()
    assert len(key) == 48 and key.isalnum()


def test_an_existing_secret_keeps_every_key_out_of_the_chart():
    objects = chart.render({"auth": {"existingSecret": "my-keys"}})
    assert not chart.find(objects, "Secret")
    for name in ("backend", "sidecar", "migrate"):
        env = chart.env(chart.containers(objects)[name])
        assert env["VIGIL_JWT_SECRET"] == {"secretKeyRef": {"name": "my-keys", "key": "jwt-secret"}}


def test_a_public_key_reaches_both_containers_and_the_canary_gets_its_own_token():
    objects = chart.render(
        {
            "auth": {
                "jwtPublicKey": PEM,
                "canaryToken": "header.payload.sig",
                "algorithms": ["ES256"],
            }
        }
    )
    found = chart.containers(objects)
    for name in ("backend", "sidecar"):
        env = chart.env(found[name])
        assert env["VIGIL_JWT_PUBLIC_KEY"] == {
            "secretKeyRef": {"name": "vigil", "key": "jwt-public-key"}
        }
        assert "VIGIL_JWT_SECRET" not in env
        assert env["VIGIL_JWT_ALGORITHMS"] == '["ES256"]'
    assert chart.env(found["sidecar"])["VIGIL_CANARY_TOKEN"] == {
        "secretKeyRef": {"name": "vigil", "key": "canary-token"}
    }
    assert "VIGIL_CANARY_TOKEN" not in chart.env(found["backend"])
    secret = chart.one(objects, "Secret")["data"]
    assert base64.b64decode(secret["jwt-public-key"]).decode() == PEM


def test_a_public_key_without_a_canary_token_is_warned_about_in_the_notes():
    notes = chart.render_templates({"auth": {"jwtPublicKey": PEM}})["vigil/templates/NOTES.txt"]
    assert "the canary is disabled" in notes


def test_the_otlp_endpoint_turns_tracing_on_with_the_pod_as_resource():
    objects = chart.render(
        {
            "otel": {
                "endpoint": "http://collector:4318",
                "resourceAttributes": "deployment.environment=staging",
            }
        }
    )
    [config_map] = [c for c in chart.find(objects, "ConfigMap") if c["metadata"]["name"] == "vigil"]
    assert config_map["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    attributes = chart.env(chart.containers(objects)["backend"])["OTEL_RESOURCE_ATTRIBUTES"]
    assert attributes.startswith("k8s.pod.name=$(K8S_POD_NAME),")
    assert attributes.endswith(",deployment.environment=staging")


def test_without_the_sidecar_the_pod_has_one_container_and_one_scrape_endpoint():
    objects = chart.render({"sidecar": {"enabled": False}})
    assert set(chart.containers(objects)) == {"migrate", "backend"}
    monitor = chart.one(objects, "ServiceMonitor")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"]
    assert [p["name"] for p in chart.one(objects, "Service")["spec"]["ports"]] == ["http"]


def test_the_ingress_keeps_websockets_open_for_an_hour_and_routes_only_the_backend():
    ingress = chart.one(chart.production_objects(), "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"
    [rule] = ingress["spec"]["rules"]
    paths = {(p["path"], p["pathType"]) for p in rule["http"]["paths"]}
    assert paths == {("/ws", "Exact"), ("/api", "Prefix"), ("/static", "Prefix"), ("/", "Exact")}
    assert {p["backend"]["service"]["port"]["name"] for p in rule["http"]["paths"]} == {"http"}


def _routed(paths, url_path: str) -> bool:
    return any(
        url_path == p["path"]
        if p["pathType"] == "Exact"
        else url_path == p["path"] or url_path.startswith(p["path"].rstrip("/") + "/")
        for p in paths
    )


def test_the_ingress_serves_the_chat_but_not_metrics_readiness_or_the_drain():
    [rule] = chart.one(chart.production_objects(), "Ingress")["spec"]["rules"]
    paths = rule["http"]["paths"]
    for public in ("/", "/ws", "/api/threads", "/static/chat.js"):
        assert _routed(paths, public), public
    for internal in ("/metrics", "/readyz", "/healthz", "/admin/drain", "/admin/traces", "/docs"):
        assert not _routed(paths, internal), internal


def test_the_network_policy_lets_prometheus_reach_the_sidecar_and_restricts_egress_on_request():
    objects = chart.render(
        {"networkPolicy": {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}}
    )
    policy = chart.one(objects, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == {"http", "sidecar"}
    assert policy["egress"][0]["ports"][0] == {"port": 53, "protocol": "UDP"}
