//! The `airlock` binary: `airlock serve` runs the gateway; every other
//! command is a client of the admin API, except the offline ones
//! (`policy explain` from files, `config check`, `doctor`, `completions`).

// Standard output goes through `output::outln!` only, so that a closed pipe
// ends the process quietly in one place instead of panicking in `println!`.
#![deny(clippy::print_stdout)]

mod cli;
mod client;
mod commands;
mod config_check;
mod doctor;
mod kube_cli;
mod login;
mod mcp_stdio;
mod mcp_tools_cli;
mod output;
mod policy_cli;
mod serve;
mod store_open;
mod transcript;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let format = cli.global.output;
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => std::process::ExitCode::from(output::report_error(format, &error)),
    }
}
