//! The `airlock` binary: `airlock serve` runs the gateway; every other
//! command is a client of the admin API.

mod cli;
mod client;
mod commands;
mod login;
mod output;
mod policy_cli;
mod serve;
mod transcript;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(1)
        }
    }
}
