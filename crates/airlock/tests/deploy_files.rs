//! The deployment files under `deploy/` and the `Dockerfile`, checked with
//! the real tools that run here without a container daemon or a cluster:
//! `docker-compose config` (Debian's docker-compose) on the compose file,
//! `haproxy -c` on its load balancer config, `promtool check config` on its
//! Prometheus config with the shipped rules, `airlock config check` on the
//! compose config and on the Helm chart's default config. `helm` itself
//! cannot be installed here (no Debian, PyPI, npm or crates.io package of
//! it), so the chart's templates are read as text: every kind the chart
//! must render is there, the probes take their paths from values, and
//! those paths answer on a real gateway. The Dockerfile cannot be built
//! (no daemon); its shape is checked: multi-stage, non-root, a health
//! check with a real subcommand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_testkit::{repo_file, repo_text};
use std::process::Command;

/// The variables the compose file requires, with throwaway values.
const COMPOSE_ENV: &[(&str, &str)] = &[
    (
        "AIRLOCK_MASTER_KEY",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    ),
    ("AIRLOCK_ADMIN_TOKEN", "compose-test-admin-token"),
    ("AIRLOCK_STORE_PASSWORD", "compose-test-store-password"),
    ("UPSTREAM_POSTGRES_PASSWORD", "compose-test-upstream"),
    ("UPSTREAM_APP_PASSWORD", "compose-test-app"),
    ("GRAFANA_ADMIN_PASSWORD", "compose-test-grafana"),
];

fn compose(with_env: bool) -> std::process::Output {
    let mut command = Command::new("docker-compose");
    command
        .arg("--project-directory")
        .arg(repo_file("deploy/compose"))
        .arg("-f")
        .arg(repo_file("deploy/compose/docker-compose.yml"))
        .arg("config");
    for (key, value) in COMPOSE_ENV {
        command.env_remove(key);
        if with_env {
            command.env(key, value);
        }
    }
    command
        .output()
        .expect("run docker-compose (.ci/install-deps installs it)")
}

fn yaml(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).unwrap()
}

/// `docker-compose config` accepts the file and resolves it into the seven
/// services, every bind-mounted file exists in the repository, the replicas
/// get their secrets only from the environment (refused without them).
#[test]
fn the_compose_file_resolves_and_mounts_files_that_exist() {
    let output = compose(true);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let resolved = yaml(&String::from_utf8_lossy(&output.stdout));
    let services = resolved["services"].as_object().unwrap();
    let mut names: Vec<&str> = services.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "airlock-1",
            "airlock-2",
            "grafana",
            "haproxy",
            "prometheus",
            "store",
            "upstream"
        ]
    );
    for replica in ["airlock-1", "airlock-2"] {
        let service = &services[replica];
        assert_eq!(service["image"], "airlock:local");
        let environment = service["environment"].to_string();
        assert!(environment.contains("AIRLOCK_MASTER_KEY"), "{environment}");
        assert!(
            environment.contains("AIRLOCK_STORE_PASSWORD"),
            "{environment}"
        );
        assert_eq!(
            service["depends_on"]["store"]["condition"],
            "service_healthy"
        );
    }
    let mut mounts = 0;
    for (name, service) in services {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let source = match volume {
                serde_json::Value::String(short) => short.split(':').next().unwrap().to_string(),
                long => long["source"].as_str().unwrap_or_default().to_string(),
            };
            if source.starts_with('/') {
                assert!(
                    std::path::Path::new(&source).exists(),
                    "{name} mounts {source}, which is missing"
                );
                mounts += 1;
            }
        }
    }
    assert!(mounts >= 10, "{mounts} bind mounts");

    let refused = compose(false);
    assert!(
        !refused.status.success(),
        "the compose file ran without its secrets"
    );
    assert!(
        common::stderr(&refused).contains("set "),
        "{}",
        common::stderr(&refused)
    );
    // No secret sits in the repository's compose files.
    for file in ["docker-compose.yml", "airlock.yaml", ".env.example"] {
        let text = repo_text(&format!("deploy/compose/{file}"));
        for (_, value) in COMPOSE_ENV {
            assert!(!text.contains(value));
        }
        assert!(!text.contains("password="), "{file}");
    }
}

/// HAProxy accepts its config; both backends send new sessions only to a
/// replica whose `/readyz` answers 200.
#[test]
fn haproxy_accepts_its_config_and_checks_readiness() {
    let output = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(repo_file("deploy/compose/haproxy.cfg"))
        .output()
        .expect("run haproxy (.ci/install-deps installs it)");
    assert!(output.status.success(), "{}", common::stderr(&output));
    let config = repo_text("deploy/compose/haproxy.cfg");
    assert_eq!(config.matches("option httpchk GET /readyz").count(), 2);
    assert_eq!(config.matches("server airlock-").count(), 4);
}

/// Prometheus accepts its compose config with the shipped rules beside it
/// (where compose mounts them).
#[test]
fn prometheus_accepts_the_compose_config_and_the_shipped_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_file("deploy/compose/prometheus.yml"),
        dir.path().join("prometheus.yml"),
    )
    .unwrap();
    std::fs::copy(
        repo_file("deploy/prometheus/airlock-rules.yaml"),
        dir.path().join("airlock-rules.yaml"),
    )
    .unwrap();
    let output = Command::new("promtool")
        .args(["check", "config"])
        .arg(dir.path().join("prometheus.yml"))
        .output()
        .unwrap();
    let text = format!("{}{}", common::stdout(&output), common::stderr(&output));
    assert!(output.status.success(), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
    assert!(text.contains("rules found"), "{text}");
}

fn config_check(dir: &std::path::Path) {
    let output = Command::new(common::binary())
        .args(["config", "check"])
        .arg(dir.join("airlock.yaml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        common::stdout(&output),
        common::stderr(&output)
    );
}

/// The compose config and the chart's default config (with its policy)
/// pass `airlock config check`; the chart renders every kind it must;
/// the probes take their paths from values, and those paths answer 200 on
/// a real gateway (`/readyz` only once it is ready); the admin port the
/// Service and probes use is the one the config listens on.
#[test]
fn the_configs_load_and_the_chart_probes_real_routes() {
    let compose = tempfile::tempdir().unwrap();
    for file in ["airlock.yaml", "policy.yaml"] {
        std::fs::copy(
            repo_file(&format!("deploy/compose/{file}")),
            compose.path().join(file),
        )
        .unwrap();
    }
    config_check(compose.path());

    let values = yaml(&repo_text("deploy/helm/airlock/values.yaml"));
    let chart = tempfile::tempdir().unwrap();
    std::fs::write(
        chart.path().join("airlock.yaml"),
        serde_json::to_string(&values["config"]).unwrap(),
    )
    .unwrap();
    std::fs::write(
        chart.path().join("policy.yaml"),
        values["policy"].as_str().unwrap(),
    )
    .unwrap();
    config_check(chart.path());
    let chart_yaml = yaml(&repo_text("deploy/helm/airlock/Chart.yaml"));
    assert_eq!(chart_yaml["apiVersion"], "v2");
    assert_eq!(chart_yaml["name"], "airlock");

    let admin_port = values["service"]["ports"]["admin"].as_u64().unwrap();
    assert!(
        values["config"]["listen"]["admin"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{admin_port}")),
        "the probes' port is not the admin listener's"
    );
    assert!(values["replicaCount"].as_u64().unwrap() >= 2);
    assert!(values["resources"]["requests"]["cpu"].is_string());
    assert!(values["podSecurityContext"]["runAsNonRoot"]
        .as_bool()
        .unwrap());

    let templates = repo_file("deploy/helm/airlock/templates");
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(&templates).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        kinds.extend(
            text.lines()
                .filter_map(|line| line.strip_prefix("kind: "))
                .map(str::to_string),
        );
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Secret",
            "Service",
            "ServiceMonitor"
        ]
    );
    let deployment = repo_text("deploy/helm/airlock/templates/deployment.yaml");
    for needed in [
        "path: {{ .Values.probes.liveness.path }}",
        "path: {{ .Values.probes.readiness.path }}",
        "name: AIRLOCK_MASTER_KEY",
        "key: master-key",
        "mountPath: /etc/airlock",
        "replicas: {{ .Values.replicaCount }}",
    ] {
        assert!(
            deployment.contains(needed),
            "deployment.yaml lacks {needed:?}"
        );
    }

    // The probes' paths on a real gateway.
    let (_cluster, gateway) = common::setup("");
    for probe in ["liveness", "readiness"] {
        let path = values["probes"][probe]["path"].as_str().unwrap();
        let (status, body) = gateway.http_get(path).unwrap();
        assert_eq!(status, 200, "{probe} probe {path}: {body}");
    }
    assert_eq!(values["probes"]["readiness"]["path"], "/readyz");
    assert!(gateway.http_get("/no-such-probe").map(|(status, _)| status) != Some(200));
}

/// The Dockerfile builds in one stage and runs in another, as a non-root
/// user, with a health check whose command is a real subcommand, serving
/// the config where compose and the chart mount it.
#[test]
fn the_dockerfile_is_multi_stage_non_root_with_a_real_health_check() {
    let dockerfile = repo_text("Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect();
    let stages: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.starts_with("FROM "))
        .map(|(index, _)| index)
        .collect();
    assert!(stages.len() >= 2, "not multi-stage");
    let runtime = &lines[*stages.last().unwrap()..];
    assert!(runtime.iter().any(|line| line.starts_with("COPY --from=")));
    let user = runtime
        .iter()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("a USER in the runtime stage");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "{user}"
    );
    let health = runtime
        .iter()
        .position(|line| line.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    let command = runtime[health..]
        .iter()
        .find(|line| line.contains("CMD"))
        .unwrap();
    assert!(command.contains("\"status\""), "{command}");
    let help = Command::new(common::binary())
        .args(["status", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(dockerfile.contains("/etc/airlock/airlock.yaml"));
    assert!(
        repo_text("deploy/compose/docker-compose.yml").contains(":/etc/airlock/airlock.yaml:ro")
    );
    let ignored = repo_text(".dockerignore");
    assert!(ignored.lines().any(|line| line == "target"));
}
