//! `mcp-cli`: the command-line client of the MCP REST facade (`/api/v1`, issue 7,
//! docs/cli.md).
//!
//! Layout: [`cli`] is the command line (clap); [`config`] the config file of contexts;
//! [`session`] resolves flags, environment and config into a [`client::Client`];
//! [`kinds`] maps collections and resource kinds to paths; [`manifest`] reads YAML/JSON
//! files; [`output`] formats tables, JSON, YAML and names; [`commands`] holds one module
//! per command group; [`error`] the errors and exit codes.

pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod error;
pub mod kinds;
pub mod manifest;
pub mod output;
pub mod session;
