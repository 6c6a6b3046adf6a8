//! The first hour with the CLI, as a new user lives it: readable `policy
//! explain`, quiet exits on closed pipes, JSON errors, help that shows
//! examples and does not make global options look required, personal tokens
//! for approvers, removing connections and credentials, and the commands
//! people expect from other gateways (`config check`, `status`, `doctor`,
//! `policy apply --dry-run`, `policy explain --live`, `completions`), plus
//! the systemd unit. Output that is the point is snapshot-tested (`insta`),
//! with temporary paths, ports and times redacted.

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{as_person, binary, events, issue_for, setup_with_policy, stderr, stdout};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The CLI with no admin API settings from the environment of the test
/// run, and no token stored by `airlock login`.
fn airlock(args: &[&str], config_dir: &Path) -> Command {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env_remove("AIRLOCK_URL")
        .env_remove("AIRLOCK_ADMIN_TOKEN")
        .env_remove("AIRLOCK_TOKEN")
        .env("AIRLOCK_CONFIG_DIR", config_dir)
        .env("COLUMNS", "100");
    command
}

fn run(args: &[&str], dir: &Path) -> Output {
    airlock(args, dir).output().expect("run airlock")
}

/// Snapshot settings: temporary folders become `[DIR]`, ports `[PORT]`,
/// RFC 3339 times `[TIME]`, versions `[VERSION]`, the audit index lag `[N]`.
fn redacted(dir: &Path, body: impl FnOnce()) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&dir.display().to_string()), "[DIR]");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    settings.add_filter(r"(airlock|CLI:) \d+\.\d+\.\d+", "$1 [VERSION]");
    settings.add_filter(r"audit index:   \d+", "audit index:   [N]");
    settings.bind(body);
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

const POLICY: &str = "version: 1
default: deny
rules:
  - name: agents-read
    match:
      identity: {kind: [agent]}
      operations: [select]
    action: allow
    mask:
      detectors: [email]
      style: partial
  - name: no-unbounded-writes
    match:
      operations: [update, delete]
      has_where: false
    action: deny
    message: add a WHERE clause
  - name: allow-everything-else-in-tests
    match: {}
    action: allow
  - name: allow-unclassified-in-tests
    match: {complete: false}
    action: allow
";

fn write_offline_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let config = dir.join("airlock.yaml");
    std::fs::write(
        &config,
        "policy: policy.yaml\nconnections:\n  - name: prod-pg\n    protocol: postgres\n    address: 127.0.0.1:5432\n    database: app\n    credential: app\n    tags: {env: prod}\n",
    )
    .unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    (config, policy)
}

/// `policy explain` in text mode speaks plain words (no `Some(false)`,
/// `Partial` or `[]`), says a file policy is not applied instead of "v0",
/// and the JSON report keeps its machine names.
#[test]
fn policy_explain_reads_as_text_and_keeps_its_json() {
    let dir = tempfile::tempdir().unwrap();
    let (config, policy) = write_offline_files(dir.path());
    let args = |sql: &'static str| {
        vec![
            "policy".to_string(),
            "explain".into(),
            "--config".into(),
            config.display().to_string(),
            "--policy".into(),
            policy.display().to_string(),
            "--identity".into(),
            "agent-7".into(),
            "--group".into(),
            "agents".into(),
            "--connection".into(),
            "prod-pg".into(),
            "--sql".into(),
            sql.into(),
        ]
    };
    let text_args = args("DELETE FROM orders; SELECT email FROM users");
    let text_args: Vec<&str> = text_args.iter().map(String::as_str).collect();
    let output = run(&text_args, dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for rust in ["Some(", "None", "Partial", "[]", "v0"] {
        assert!(!text.contains(rust), "{rust:?} in:\n{text}");
    }
    insta::assert_snapshot!("policy_explain_text", text);

    let mut json_args = text_args.clone();
    json_args.extend(["--output", "json"]);
    let output = run(&json_args, dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["decision"]["policy_version"], 0);
    assert_eq!(json["decision"]["mask"]["style"], "partial");
    let conditions: Vec<&str> = json["rules"][1]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|condition| condition["condition"].as_str().unwrap())
        .collect();
    assert!(
        conditions.contains(&"has_where is Some(false)"),
        "the JSON condition names stay as they were: {conditions:?}"
    );
    assert!(json["rules"][1]["conditions"][0].get("text").is_none());
}

/// Output cut short by the reader (`… | head`) ends the CLI quietly: no
/// panic, no error text, status 141 like a process ended by SIGPIPE.
#[test]
fn a_closed_pipe_ends_the_cli_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // Large output (thousands of lines), and a reader that has gone before
    // the first line is written.
    let output = closed_stdout(airlock(&["completions", "bash"], dir.path()));
    assert_quiet_broken_pipe(&output);
}

/// Runs `command` with standard output a pipe whose reading end is closed
/// before the command writes anything.
fn closed_stdout(mut command: Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn airlock");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for airlock")
}

fn assert_quiet_broken_pipe(output: &Output) {
    let error = stderr(output);
    assert!(!error.contains("panicked"), "{error}");
    assert!(!error.contains("Broken pipe"), "{error}");
    assert!(error.is_empty(), "nothing on stderr: {error}");
    assert_eq!(output.status.code(), Some(141), "{error}");
}

/// Approving with only the admin token says that approvals need the
/// approver's own token and how to get one, not "no admin token".
#[test]
fn approving_with_the_admin_token_says_which_token_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["review", "approve", "r-3f9c"][..],
        &["access", "approve", "r-3f9c"][..],
        &["mfa", "enroll"][..],
    ] {
        let output = airlock(args, dir.path())
            .env("AIRLOCK_ADMIN_TOKEN", "aladm_the-admin-token")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let error = stderr(&output);
        assert!(!error.contains("no admin token"), "{error}");
        assert!(!error.contains("set AIRLOCK_ADMIN_TOKEN"), "{error}");
        for needed in [
            "needs your own token, not the admin token",
            "AIRLOCK_TOKEN",
            "airlock login",
            "airlock token issue --identity alice --kind human --group dba",
        ] {
            assert!(error.contains(needed), "{needed:?} missing: {error}");
        }
    }
    let output = run(&["review", "approve", "r-3f9c"], dir.path());
    insta::assert_snapshot!("approve_without_any_token", stderr(&output));
}

/// Every subcommand a new user asked about has examples, and global options
/// sit under their own headings instead of looking required.
#[test]
fn subcommand_help_has_examples_and_groups_global_options() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["session", "replay"][..],
        &["audit", "verify"][..],
        &["token", "revoke"][..],
        &["policy", "rollback"][..],
        &["session", "live"][..],
        &["mfa", "enroll"][..],
        &["config", "check"][..],
        &["doctor"][..],
        &["status"][..],
        &["completions"][..],
        &["connection", "remove"][..],
        &["credential", "delete"][..],
        &["kubeconfig"][..],
        &["token", "kubectl-credential"][..],
    ] {
        let mut with_help = args.to_vec();
        with_help.push("--help");
        let output = run(&with_help, dir.path());
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        let help = stdout(&output);
        assert!(
            help.contains("Example:") || help.contains("Examples:"),
            "{args:?} has no example:\n{help}"
        );
        if !matches!(args, ["completions"]) {
            assert!(
                help.contains("Connection options (global, optional):"),
                "{args:?}:\n{help}"
            );
        }
    }
    let output = run(&["token", "revoke", "--help"], dir.path());
    insta::assert_snapshot!("token_revoke_help", stdout(&output));
}

/// Under `--output json` an error is one JSON object on standard error,
/// with the admin API's HTTP status when there is one, and exit status 1.
#[test]
fn errors_under_json_output_are_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let port = airlock_testkit::free_port();
    let output = airlock(&["token", "list", "--output", "json"], dir.path())
        .env("AIRLOCK_URL", format!("http://127.0.0.1:{port}"))
        .env("AIRLOCK_ADMIN_TOKEN", "aladm_x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let error: serde_json::Value = serde_json::from_slice(&output.stderr)
        .unwrap_or_else(|_| panic!("one JSON object: {}", stderr(&output)));
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cannot reach the admin API"));
    assert!(error["error"]["status"].is_null());
    // Text mode keeps the plain message.
    let output = airlock(&["token", "list"], dir.path())
        .env("AIRLOCK_URL", format!("http://127.0.0.1:{port}"))
        .env("AIRLOCK_ADMIN_TOKEN", "aladm_x")
        .output()
        .unwrap();
    assert!(stderr(&output).starts_with("error: cannot reach the admin API"));
}

/// `config check` validates the config and the policy it names, offline,
/// and reports every problem of both at once, one location each.
#[test]
fn config_check_reports_every_problem_of_config_and_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_offline_files(dir.path());
    let output = run(
        &["config", "check", &config.display().to_string()],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    redacted(dir.path(), || {
        insta::assert_snapshot!("config_check_ok", stdout(&output));
    });

    std::fs::write(
        &config,
        "policy: policy.yaml\ntokens:\n  max_ttl: forever\nconnections:\n  - name: prod-pg\n    protocol: postgres\n    address: db.internal\n    credential: app\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "version: 1\ndefault: deny\nrules:\n  - name: r1\n    match: {operations: [selec]}\n    action: allow\n  - name: r2\n    match: {}\n    action: maybe\n",
    )
    .unwrap();
    let output = run(
        &["config", "check", &config.display().to_string()],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    let problem_lines: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with(&dir.path().display().to_string()))
        .collect();
    assert!(problem_lines.len() >= 4, "{text}");
    for line in &problem_lines {
        // `file:line: message`: one location per problem.
        let rest = line
            .split_once(".yaml:")
            .map(|(_, rest)| rest)
            .unwrap_or("");
        assert!(
            rest.split(':')
                .next()
                .is_some_and(|n| n.parse::<u64>().is_ok()),
            "no line number: {line}"
        );
    }
    redacted(dir.path(), || {
        insta::assert_snapshot!("config_check_problems", text);
    });

    let output = run(
        &[
            "config",
            "check",
            &config.display().to_string(),
            "--output",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["files"][1]["kind"], "policy");
    assert!(!report["files"][1]["problems"]
        .as_array()
        .unwrap()
        .is_empty());

    let output = run(
        &[
            "config",
            "check",
            &dir.path().join("missing.yaml").display().to_string(),
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("cannot read the file"));
}

/// `completions` prints a script for each shell.
#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef airlock"),
        ("fish", "complete -c airlock"),
    ] {
        let output = run(&["completions", shell], dir.path());
        assert!(output.status.success(), "{}", stderr(&output));
        let script = stdout(&output);
        assert!(script.contains(marker), "{shell}: {script:.200}");
        assert!(script.contains("doctor"), "{shell}");
    }
}

/// The systemd unit runs a real subcommand with real flags, is hardened as
/// documented, and passes `systemd-analyze verify` where that is installed.
#[test]
fn the_systemd_unit_runs_real_commands_and_is_hardened() {
    let unit_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd/airlock.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let value = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|line| line.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
            .collect()
    };
    for (key, expected) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "airlock"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "true"),
        ("Restart", "on-failure"),
        ("EnvironmentFile", "/etc/airlock/airlock.env"),
    ] {
        assert_eq!(value(key), [expected], "{key}");
    }
    let dir = tempfile::tempdir().unwrap();
    let commands: Vec<String> = value("ExecStartPre")
        .into_iter()
        .chain(value("ExecStart"))
        .collect();
    assert_eq!(commands.len(), 2);
    for command in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(words[0], "/usr/local/bin/airlock", "{command}");
        // The arguments parse (clap refuses an unknown subcommand, flag or
        // value with status 2 before it prints the help).
        let mut args = words[1..].to_vec();
        args.push("--help");
        let output = run(&args, dir.path());
        assert!(output.status.success(), "{command}: {}", stderr(&output));
    }
    assert!(commands[1]
        .contains(" serve --config /etc/airlock/airlock.yaml --data-dir /var/lib/airlock"));

    let analyze = Path::new("/usr/bin/systemd-analyze");
    if analyze.exists() {
        // `verify` checks that the executable exists: point it at ours.
        let copy = dir.path().join("airlock.service");
        std::fs::write(
            &copy,
            unit.replace("/usr/local/bin/airlock", &binary().display().to_string()),
        )
        .unwrap();
        let output = Command::new(analyze)
            .arg("verify")
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "systemd-analyze verify: {}",
            stderr(&output)
        );
    } else {
        eprintln!("note: systemd-analyze is not installed; the unit was checked without it");
    }
}

/// Against a real gateway: personal tokens without connections reach no
/// database, `connection add` refuses unknown credentials, connections and
/// credentials can be removed (audited), JSON errors carry the HTTP status,
/// `status`, `policy apply --dry-run` and `policy explain --live` work, and
/// `session show | head` ends quietly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_of_the_first_hour() {
    let (cluster, gateway) = setup_with_policy(
        "auth:\n  lockout_threshold: 50\n  lockout_source_threshold: 100\n",
        POLICY,
    );

    // A human's token with no connection: the admin API's personal routes
    // accept it …
    let issued = gateway.cli_ok(
        &[
            "token",
            "issue",
            "--identity",
            "alice",
            "--kind",
            "human",
            "--group",
            "dba",
            "--output",
            "json",
        ],
        None,
    );
    let issued: serde_json::Value = serde_json::from_str(&issued).unwrap();
    assert_eq!(issued["connections"], serde_json::json!([]));
    let alice = issued["token"].as_str().unwrap().to_string();
    let listed = as_person(&gateway, &alice, &["review", "list", "--output", "json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    // … and the PostgreSQL listener refuses it for every connection.
    for connection in ["pg-test", "pg-md5", "pg-plain", "pg-other", "pg-down"] {
        let error = match common::connect(&gateway, "alice", connection, &alice).await {
            Ok(_) => panic!("a token with no connection reached {connection}"),
            Err(error) => error,
        };
        let db_error = error.as_db_error().expect("a server error");
        assert_eq!(
            db_error.code().code(),
            "28P01",
            "{connection}: {db_error:?}"
        );
    }
    let refusals = events(&gateway)
        .into_iter()
        .filter(|event| {
            event.kind == "auth.failure"
                && event.identity.as_deref() == Some("alice")
                && event.data["reason"] == "out_of_scope"
        })
        .count();
    assert_eq!(refusals, 5);
    // Agents and services still need a connection.
    let output = gateway.cli(&["token", "issue", "--identity", "agent-9"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("only --kind human may have none"),
        "{}",
        stderr(&output)
    );

    // `connection add` with a credential that is not stored.
    let add = |name: &str, credential: &str| {
        gateway.cli(
            &[
                "connection",
                "add",
                name,
                "--address",
                &format!("127.0.0.1:{}", cluster.port),
                "--database",
                "appdb",
                "--credential",
                credential,
            ],
            None,
        )
    };
    let output = add("reports-pg", "reports-ro");
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains("credential \"reports-ro\" is not stored"),
        "{error}"
    );
    assert!(
        error.contains("airlock credential set reports-ro"),
        "{error}"
    );

    // Remove connections and delete credentials.
    gateway.set_credential("reports-ro", "app", &cluster.role_password("app"));
    let output = add("reports-pg", "reports-ro");
    assert!(output.status.success(), "{}", stderr(&output));
    let output = gateway.cli(&["credential", "delete", "reports-ro"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is used by connection reports-pg"),
        "{}",
        stderr(&output)
    );
    let output = gateway.cli(&["credential", "delete", "app"], None);
    assert!(
        stderr(&output)
            .contains("used by connections pg-test, pg-other, pg-down in the config file"),
        "{}",
        stderr(&output)
    );
    let output = gateway.cli(&["connection", "remove", "pg-test"], None);
    assert!(
        stderr(&output).contains("defined in the config file"),
        "{}",
        stderr(&output)
    );
    let removed = gateway.cli_ok(&["connection", "remove", "reports-pg"], None);
    assert!(
        removed.contains("connection reports-pg removed"),
        "{removed}"
    );
    let connections = gateway.cli_ok(&["connection", "list", "--output", "json"], None);
    assert!(!connections.contains("reports-pg"), "{connections}");
    let deleted = gateway.cli_ok(&["credential", "delete", "reports-ro"], None);
    assert!(
        deleted.contains("credential reports-ro deleted"),
        "{deleted}"
    );
    let credentials = gateway.cli_ok(&["credential", "list", "--output", "json"], None);
    assert!(!credentials.contains("reports-ro"), "{credentials}");
    let kinds: Vec<String> = events(&gateway)
        .into_iter()
        .map(|event| event.kind)
        .collect();
    assert!(
        kinds.contains(&"connection.remove".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"credential.delete".to_string()),
        "{kinds:?}"
    );

    // A JSON error with the API's status.
    let output = gateway.cli(
        &["connection", "remove", "reports-pg", "--output", "json"],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let error: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(error["error"]["status"], 404);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not found"));

    // `status`.
    let status = gateway.cli_ok(&["status"], None);
    let dir = tempfile::tempdir().unwrap();
    redacted(dir.path(), || {
        insta::assert_snapshot!("status_text", status);
    });
    let status: serde_json::Value =
        serde_json::from_str(&gateway.cli_ok(&["status", "--output", "json"], None)).unwrap();
    assert_eq!(status["ready"], true);
    assert_eq!(status["live_sessions"], 0);
    assert_eq!(status["policy"]["version"], 1);
    assert_eq!(status["server_version"], env!("CARGO_PKG_VERSION"));

    // `policy apply --dry-run`: what changes, nothing applied.
    let file = dir.path().join("next.yaml");
    std::fs::write(
        &file,
        POLICY
            .replace("default: deny", "default: allow")
            .replace("operations: [update, delete]", "operations: [update, delete, truncate]")
            .replace("  - name: allow-unclassified-in-tests\n    match: {complete: false}\n    action: allow\n", "")
            + "  - name: no-ddl\n    match: {operations: [drop]}\n    action: deny\n",
    )
    .unwrap();
    let file_arg = file.display().to_string();
    let dry = gateway.cli_ok(&["policy", "apply", &file_arg, "--dry-run"], None);
    redacted(dir.path(), || {
        insta::assert_snapshot!("policy_apply_dry_run", dry);
    });
    let dry: serde_json::Value = serde_json::from_str(&gateway.cli_ok(
        &[
            "policy",
            "apply",
            &file_arg,
            "--dry-run",
            "--output",
            "json",
        ],
        None,
    ))
    .unwrap();
    assert_eq!(dry["rules_added"], serde_json::json!(["no-ddl"]));
    assert_eq!(
        dry["rules_removed"],
        serde_json::json!(["allow-unclassified-in-tests"])
    );
    assert_eq!(
        dry["rules_changed"],
        serde_json::json!(["no-unbounded-writes"])
    );
    assert_eq!(
        dry["default"],
        serde_json::json!({"from": "deny", "to": "allow"})
    );
    assert_eq!(dry["applied"], false);
    let history: serde_json::Value =
        serde_json::from_str(&gateway.cli_ok(&["policy", "history", "--output", "json"], None))
            .unwrap();
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "the dry run applied nothing"
    );

    // `policy explain --live`: the live version and the server's connections.
    let explained = gateway.cli_ok(
        &[
            "policy",
            "explain",
            "--live",
            "--identity",
            "agent-7",
            "--group",
            "agents",
            "--connection",
            "pg-test",
            "--sql",
            "DELETE FROM orders",
        ],
        None,
    );
    insta::assert_snapshot!("policy_explain_live", explained);
    let output = gateway.cli(
        &[
            "policy",
            "explain",
            "--live",
            "--identity",
            "agent-7",
            "--connection",
            "nowhere",
            "--sql",
            "select 1",
        ],
        None,
    );
    assert!(stderr(&output).contains("connection \"nowhere\" is not configured on the server"));

    // `session show … | head`: quiet on a closed pipe.
    let token = issue_for(&gateway, "pg-test", "agent-7", "agent", &["agents"]);
    {
        let client = common::client(&gateway, "agent-7", "pg-test", &token).await;
        client.simple_query("select 1").await.unwrap();
    }
    let sessions: serde_json::Value = serde_json::from_str(&gateway.cli_ok(
        &[
            "session",
            "list",
            "--identity",
            "agent-7",
            "--output",
            "json",
        ],
        None,
    ))
    .unwrap();
    let session_id = sessions[0]["session_id"].as_str().unwrap().to_string();
    for args in [
        vec!["session", "show", session_id.as_str()],
        vec!["session", "replay", session_id.as_str()],
        vec!["audit", "export"],
    ] {
        let mut command = Command::new(binary());
        command
            .args(&args)
            .env(
                "AIRLOCK_URL",
                format!("http://127.0.0.1:{}", gateway.admin_port),
            )
            .env("AIRLOCK_ADMIN_TOKEN", &gateway.admin_token);
        let output = closed_stdout(command);
        assert_quiet_broken_pipe(&output);
    }
}

/// `doctor` from a config file and a data dir: reachable and unreachable
/// upstreams, an identity provider that answers and one that does not, the
/// generated certificate, and a file other users may read.
#[test]
fn doctor_checks_upstreams_providers_certificates_and_permissions() {
    let (cluster, gateway) = setup_with_policy("", POLICY);
    let provider = DiscoveryServer::start();
    let dead_provider = airlock_testkit::free_port();
    let down = airlock_testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("airlock.yaml");
    std::fs::write(
        &config,
        format!(
            "connections:
  - name: pg-test
    protocol: postgres
    address: 127.0.0.1:{port}
    database: appdb
    credential: app
  - name: pg-down
    protocol: postgres
    address: 127.0.0.1:{down}
    database: appdb
    credential: app
identity_providers:
  - name: corp
    issuer: {issuer}
    audiences: [airlock]
    identity_claim: sub
    kind: human
  - name: gone
    issuer: http://127.0.0.1:{dead_provider}/
    audiences: [airlock]
    identity_claim: sub
    kind: human
",
            port = cluster.port,
            issuer = provider.issuer,
        ),
    )
    .unwrap();
    let data_dir = gateway.data_dir();
    let doctor = |format: &str| {
        run(
            &[
                "doctor",
                "--config",
                &config.display().to_string(),
                "--data-dir",
                &data_dir.display().to_string(),
                "--timeout",
                "2",
                "--output",
                format,
            ],
            dir.path(),
        )
    };
    let output = doctor("json");
    assert_eq!(output.status.code(), Some(1), "pg-down and gone fail");
    let findings: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let status_of = |check: &str, target: &str| -> String {
        findings
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == check && f["target"].as_str().unwrap().starts_with(target))
            .map(|f| f["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {check} {target} in {findings:#}"))
    };
    assert_eq!(status_of("config", &config.display().to_string()), "ok");
    assert_eq!(status_of("upstream", "pg-test"), "ok");
    assert_eq!(status_of("upstream", "pg-down"), "fail");
    assert_eq!(status_of("identity provider", "corp"), "ok");
    assert_eq!(status_of("identity provider", "gone"), "fail");
    assert_eq!(status_of("certificate", "client TLS"), "ok");
    assert_eq!(status_of("data dir", &data_dir.display().to_string()), "ok");

    // A file other users may read fails the permissions check.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let loose = data_dir.join("notes.txt");
        std::fs::write(&loose, "x").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let output = doctor("text");
        let text = stdout(&output);
        assert!(
            text.contains(&format!(
                "FAIL  permissions       {}: mode 0644: other users may read it; `chmod 600 {}`",
                loose.display(),
                loose.display()
            )),
            "{text}"
        );
        assert!(text.lines().last().unwrap().ends_with("failed"), "{text}");
    }
}

/// A one-thread HTTP server answering an OIDC discovery request.
struct DiscoveryServer {
    issuer: String,
}

impl DiscoveryServer {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!(
            "http://127.0.0.1:{}/",
            listener.local_addr().unwrap().port()
        );
        let document = serde_json::json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}jwks"),
        })
        .to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16) {
                let Ok(mut stream) = stream else { continue };
                let mut request = [0u8; 4096];
                let _ = std::io::Read::read(&mut stream, &mut request);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{document}",
                    document.len()
                );
            }
        });
        Self { issuer }
    }
}
