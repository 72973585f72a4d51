//! `mailboxes import FILE`: a CSV or JSON file sent in chunks to
//! `POST /tenants/{t}/mailboxes:import` (at most 10,000 rows and 10 MiB per request), with a
//! progress bar on stderr (hidden when stderr is not a terminal) and the per-row errors.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{ImportArgs, ImportFormat};
use crate::client::{Body, IMPORT_TIMEOUT};
use crate::commands::resources::print;
use crate::error::{Error, Result};
use crate::kinds::Resource;
use crate::manifest::read_text;
use crate::output::{self, Format};
use crate::session::Session;

/// Most octets of one request body (the server takes 10 MiB; leave room for the header).
pub const MAX_CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// One request's worth of rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Number of the chunk's first row in the file (1 = the first data row).
    pub first_row: usize,
    /// Rows in it.
    pub rows: usize,
    /// Content type of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

/// Splits a CSV file (header row first) into chunks of at most `size` rows and
/// [`MAX_CHUNK_BYTES`], each with the header. Rows are re-quoted (RFC 4180); the server
/// checks the columns.
///
/// # Errors
/// The record that is not valid CSV.
pub fn csv_chunks(text: &str, size: usize) -> std::result::Result<Vec<Chunk>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let start = |first_row| -> std::result::Result<(csv::Writer<Vec<u8>>, Chunk), String> {
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::new());
        w.write_record(&header).map_err(|e| e.to_string())?;
        Ok((
            w,
            Chunk {
                first_row,
                rows: 0,
                content_type: "text/csv",
                body: Vec::new(),
            },
        ))
    };
    let finish = |w: csv::Writer<Vec<u8>>, mut c: Chunk| -> std::result::Result<Chunk, String> {
        c.body = w.into_inner().map_err(|e| e.to_string())?;
        Ok(c)
    };
    let mut chunks = Vec::new();
    let (mut w, mut c) = start(1)?;
    let mut bytes = 0usize;
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("row {}: {e}", i + 1))?;
        let len: usize = record.iter().map(|f| f.len() + 3).sum();
        if c.rows == size || (c.rows > 0 && bytes + len > MAX_CHUNK_BYTES) {
            chunks.push(finish(w, c)?);
            (w, c) = start(i + 1)?;
            bytes = 0;
        }
        w.write_record(&record).map_err(|e| e.to_string())?;
        c.rows += 1;
        bytes += len;
    }
    if c.rows > 0 {
        chunks.push(finish(w, c)?);
    }
    Ok(chunks)
}

/// Splits a JSON array into chunks of at most `size` elements and [`MAX_CHUNK_BYTES`].
///
/// # Errors
/// When the text is not a JSON array.
pub fn json_chunks(text: &str, size: usize) -> std::result::Result<Vec<Chunk>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Value::Array(items) = value else {
        return Err("must be a JSON array of {name?, labels?, spec, password?}".into());
    };
    let mut chunks = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut bytes = 0usize;
    let mut first_row = 1;
    for (i, item) in items.into_iter().enumerate() {
        let len = item.to_string().len() + 1;
        if current.len() == size || (!current.is_empty() && bytes + len > MAX_CHUNK_BYTES) {
            let rows = current.len();
            chunks.push(Chunk {
                first_row,
                rows,
                content_type: "application/json",
                body: serde_json::to_vec(&std::mem::take(&mut current)).unwrap_or_default(),
            });
            first_row = i + 1;
            bytes = 0;
        }
        current.push(item);
        bytes += len;
    }
    if !current.is_empty() {
        chunks.push(Chunk {
            first_row,
            rows: current.len(),
            content_type: "application/json",
            body: serde_json::to_vec(&current).unwrap_or_default(),
        });
    }
    Ok(chunks)
}

/// The format of `path`: `format`, else its extension.
fn format_of(path: &Path, format: Option<ImportFormat>) -> Result<ImportFormat> {
    if let Some(f) = format {
        return Ok(f);
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => Ok(ImportFormat::Csv),
        Some(e) if e.eq_ignore_ascii_case("json") => Ok(ImportFormat::Json),
        _ => Err(Error::Usage(format!(
            "{}: give --format csv|json (no .csv or .json extension)",
            path.display()
        ))),
    }
}

/// One row's failure as a line: `row 3 (bob.example.com): spec.address: ...`.
pub fn row_error(r: &Value) -> String {
    let row = r.get("row").and_then(Value::as_u64).unwrap_or(0);
    let name = r
        .get("name")
        .and_then(Value::as_str)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let fields: Vec<String> = r
        .get("errors")
        .and_then(Value::as_array)
        .map(|es| {
            es.iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.get("field").and_then(Value::as_str).unwrap_or("?"),
                        e.get("message").and_then(Value::as_str).unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let why = if fields.is_empty() {
        r.get("error")
            .and_then(Value::as_str)
            .unwrap_or("refused")
            .to_owned()
    } else {
        fields.join("; ")
    };
    format!("row {row}{name}: {why}")
}

/// `mailboxes import`.
///
/// # Errors
/// [`Error::Partial`] when some rows failed (each printed on stderr); the problem of a
/// chunk the server refused as a whole (nothing of it imported; earlier chunks stay).
pub fn import(session: &Session, args: &ImportArgs) -> Result<()> {
    let tenant = session.tenant()?.to_owned();
    let format = format_of(&args.file, args.format)?;
    let text = read_text(&args.file)?;
    let size = usize::from(args.chunk_size);
    let chunks = match format {
        ImportFormat::Csv => csv_chunks(&text, size),
        ImportFormat::Json => json_chunks(&text, size),
    }
    .map_err(|e| Error::parse(&args.file, e))?;
    let total: usize = chunks.iter().map(|c| c.rows).sum();

    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows {elapsed_precise} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut path = Resource::Mailboxes.collection(Some(&tenant));
    if let Some(last) = path.last_mut() {
        last.push_str(":import");
    }
    let query = if args.dry_run {
        vec![("dryRun", "true".to_owned())]
    } else {
        Vec::new()
    };
    let mut summary = [0usize; 4]; // created, updated, unchanged, failed
    let mut results = Vec::new();
    for c in chunks {
        let answer = session.client.send(
            Method::POST,
            &path,
            &query,
            Some(Body::Raw(c.content_type, c.body)),
            Some(IMPORT_TIMEOUT),
        );
        let answer = match answer {
            Ok(a) => a.body,
            Err(e) => {
                bar.abandon();
                eprintln!(
                    "error: rows {} to {} refused as a whole",
                    c.first_row,
                    c.first_row + c.rows - 1
                );
                return Err(e);
            }
        };
        for r in answer
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut r = r.clone();
            // Row numbers of the file, not of the chunk.
            if let Some(n) = r.get("row").and_then(Value::as_u64) {
                r["row"] = json!(n as usize + c.first_row - 1);
            }
            let slot = match r.get("outcome").and_then(Value::as_str) {
                Some("created") => 0,
                Some("updated") => 1,
                Some("unchanged") => 2,
                _ => 3,
            };
            summary[slot] += 1;
            if slot == 3 {
                bar.suspend(|| eprintln!("error: {}", row_error(&r)));
            }
            results.push(r);
        }
        bar.inc(c.rows as u64);
    }
    bar.finish_and_clear();
    let [created, updated, unchanged, failed] = summary;
    let all = json!({"dryRun": args.dry_run,
        "summary": {"created": created, "updated": updated, "unchanged": unchanged, "failed": failed},
        "results": results});
    match session.format {
        Some(Format::Json) => print(&output::json(&all)),
        Some(Format::Yaml) => print(&output::yaml(&all)),
        _ => print(&format!(
            "{total} rows: {created} created, {updated} updated, {unchanged} unchanged, \
             {failed} failed{}\n",
            if args.dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        )),
    }
    if failed > 0 {
        return Err(Error::Partial(format!("{failed} of {total} rows failed")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_chunked_with_its_header() {
        let text = "\u{feff}address,password\na@x,\"p,1\"\nb@x,p2\nc@x,\"multi\nline\"\n";
        let chunks = csv_chunks(text, 2).expect("chunks");
        assert_eq!(chunks.len(), 2);
        assert_eq!((chunks[0].first_row, chunks[0].rows), (1, 2));
        assert_eq!((chunks[1].first_row, chunks[1].rows), (3, 1));
        assert_eq!(
            String::from_utf8(chunks[0].body.clone()).expect("utf8"),
            "address,password\na@x,\"p,1\"\nb@x,p2\n"
        );
        assert_eq!(
            String::from_utf8(chunks[1].body.clone()).expect("utf8"),
            "address,password\nc@x,\"multi\nline\"\n"
        );
        assert!(csv_chunks("address\n", 5).expect("empty").is_empty());
    }

    #[test]
    fn json_is_chunked() {
        let items: Vec<Value> = (0..5)
            .map(|i| json!({"spec": {"address": format!("u{i}@x")}}))
            .collect();
        let chunks = json_chunks(&Value::Array(items).to_string(), 2).expect("chunks");
        let shape: Vec<(usize, usize)> = chunks.iter().map(|c| (c.first_row, c.rows)).collect();
        assert_eq!(shape, [(1, 2), (3, 2), (5, 1)]);
        let second: Value = serde_json::from_slice(&chunks[1].body).expect("json");
        assert_eq!(second[0]["spec"]["address"], "u2@x");
        assert!(json_chunks("{}", 2).is_err());
    }

    #[test]
    fn row_errors_read_well() {
        let cases = [
            (
                json!({"row": 3, "name": "b", "outcome": "error", "error": "invalid",
                       "errors": [{"field": "spec.address", "message": "must hold one @"}]}),
                "row 3 (b): spec.address: must hold one @",
            ),
            (
                json!({"row": 4, "outcome": "error", "error": "has 3 fields, the header has 2"}),
                "row 4: has 3 fields, the header has 2",
            ),
        ];
        for (r, want) in cases {
            assert_eq!(row_error(&r), want);
        }
    }

    #[test]
    fn formats_from_extensions() {
        let cases = [
            ("a.csv", None, Some(ImportFormat::Csv)),
            ("a.JSON", None, Some(ImportFormat::Json)),
            ("-", Some(ImportFormat::Json), Some(ImportFormat::Json)),
            ("a.txt", None, None),
        ];
        for (p, f, want) in cases {
            assert_eq!(format_of(Path::new(p), f).ok(), want, "{p}");
        }
    }
}
