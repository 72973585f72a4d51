//! `mcp-cli`: parses the command line, runs it, and exits with its code (0 success, 1 server
//! or validation error, 2 usage error; docs/cli.md).

use clap::Parser;

use mcp_cli::cli::Cli;
use mcp_cli::error::{EXIT_OK, Error};

fn main() {
    // Usage errors exit 2 here (clap), --help and --version 0.
    let cli = Cli::parse();
    let code = match mcp_cli::commands::run(cli) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            match &e {
                Error::Partial(what) => eprintln!("error: {what}"),
                Error::Problem(p) => eprintln!("Error from server: {p}"),
                other => eprintln!("error: {other}"),
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}
