//! The MariaDB fixture starts a real server whose test users log in with
//! the plugins they are said to use, over TCP with their passwords.

use airlock_testkit::{MariaDb, MARIADB_TEST_USERS};
use std::process::Command;

#[test]
fn mariadb_fixture_serves_each_test_user_by_its_plugin() {
    let server = MariaDb::start();
    let plugins = server.sql("SELECT user, plugin FROM mysql.user ORDER BY user");
    for (user, plugin) in MARIADB_TEST_USERS {
        assert!(
            plugins.contains(&format!("{user}\t{plugin}")),
            "{user} should use {plugin}: {plugins}"
        );
        let output = Command::new("mariadb")
            .arg("--no-defaults")
            .args(["-h", "127.0.0.1", "-P", &server.port.to_string()])
            .arg(format!("-u{user}"))
            .arg(format!("-p{}", server.password(user)))
            .args(["--batch", "--skip-column-names", "appdb", "-e"])
            .arg(format!("SELECT 'hello from {user}'"))
            .output()
            .expect("run mariadb");
        assert!(
            output.status.success(),
            "{user} cannot log in: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            format!("hello from {user}")
        );
        let wrong = Command::new("mariadb")
            .arg("--no-defaults")
            .args(["-h", "127.0.0.1", "-P", &server.port.to_string()])
            .arg(format!("-u{user}"))
            .arg("-pwrong")
            .args(["appdb", "-e", "SELECT 1"])
            .output()
            .expect("run mariadb");
        assert!(
            !wrong.status.success(),
            "{user} logged in with a wrong password"
        );
    }
    assert!(
        server.general_log().contains("hello from app"),
        "the general log records what the server ran"
    );
}
