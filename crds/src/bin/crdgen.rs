//! `crdgen`: writes the CRD manifests of all MCP kinds, one YAML file per kind, into every
//! directory given with `--out` (the option may be repeated). The committed copies are
//! regenerated with:
//!
//! ```sh
//! cargo run -p mcp-crds --bin crdgen -- --out crds/manifests --out charts/mcp/crds
//! ```
//!
//! Without `--out` it prints all manifests to stdout as one multi-document stream.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut out: Vec<PathBuf> = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => match args.next() {
                Some(dir) => out.push(PathBuf::from(dir)),
                None => return usage("--out needs a directory"),
            },
            "-h" | "--help" => {
                println!("usage: {USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    if out.is_empty() {
        return match mcp_crds::manifests::rendered() {
            Ok(docs) => {
                let texts: Vec<String> = docs.into_iter().map(|(_, text)| text).collect();
                print!("{}", texts.join("---\n"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("crdgen: {e}");
                ExitCode::FAILURE
            }
        };
    }
    for dir in out {
        match mcp_crds::manifests::write_all(&dir) {
            Ok(paths) => {
                for p in paths {
                    println!("wrote {}", p.display());
                }
            }
            Err(e) => {
                eprintln!("crdgen: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

const USAGE: &str = "crdgen [--out DIR]...";

fn usage(message: &str) -> ExitCode {
    eprintln!("crdgen: {message}\nusage: {USAGE}");
    ExitCode::from(2)
}
