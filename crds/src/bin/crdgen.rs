//! `crdgen`: writes the CRD manifests of all MCP kinds, one YAML file per kind.
//!
//! ```sh
//! cargo run -p mcp-crds --bin crdgen -- --out crds/manifests
//! ```
//!
//! Without `--out` it prints all manifests to stdout as one multi-document stream.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut out: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => match args.next() {
                Some(dir) => out = Some(PathBuf::from(dir)),
                None => return usage("--out needs a directory"),
            },
            "-h" | "--help" => {
                println!("usage: crdgen [--out DIR]");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    match out {
        Some(dir) => match mcp_crds::manifests::write_all(&dir) {
            Ok(paths) => {
                for p in paths {
                    println!("wrote {}", p.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("crdgen: {e}");
                ExitCode::FAILURE
            }
        },
        None => match mcp_crds::manifests::rendered() {
            Ok(docs) => {
                let texts: Vec<String> = docs.into_iter().map(|(_, text)| text).collect();
                print!("{}", texts.join("---\n"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("crdgen: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("crdgen: {message}\nusage: crdgen [--out DIR]");
    ExitCode::from(2)
}
