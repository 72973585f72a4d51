//! Reading objects for `apply -f` and `delete -f` (and `create -f`): YAML files of one or
//! more documents, JSON files, directories, standard input.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// One object read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Where it came from: the file (`-` for standard input) and, in a multi-document file,
    /// the document's position (`tenant.yaml#2`).
    pub source: String,
    /// The object.
    pub value: Value,
}

/// Whether `path` names a file a directory listing picks up.
fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// The files of `path`: itself, or a directory's manifest files sorted by path
/// (subdirectories too when `recursive`).
///
/// # Errors
/// [`Error::Io`] when a directory cannot be listed.
pub fn files(path: &Path, recursive: bool) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(path, e))?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if recursive {
                out.extend(files(&p, true)?);
            }
        } else if is_manifest(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The objects of `text`, read from `source`: JSON when `json`, else YAML of any number of
/// `---`-separated documents (empty documents are skipped). A `List` (`{"kind": "List",
/// "items": [...]}`) or a JSON array gives its elements.
///
/// # Errors
/// [`Error::Parse`] naming the document that is not valid.
pub fn parse(text: &str, source: &str, json: bool) -> Result<Vec<Document>> {
    let mut values = Vec::new();
    if json {
        let v: Value = serde_json::from_str(text).map_err(|e| Error::parse(source, e))?;
        values.push(v);
    } else {
        for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
            let v = Value::deserialize(doc)
                .map_err(|e| Error::parse(format!("{source}#{}", i + 1), e))?;
            values.push(v);
        }
    }
    let many = values.len() > 1;
    let mut out = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        let at = if many {
            format!("{source}#{}", i + 1)
        } else {
            source.to_owned()
        };
        let items = match v {
            Value::Null => continue,
            Value::Array(items) => items,
            Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
                match m.get("items") {
                    Some(Value::Array(items)) => items.clone(),
                    _ => return Err(Error::parse(at, "a List without items")),
                }
            }
            v @ Value::Object(_) => vec![v],
            _ => return Err(Error::parse(at, "not an object")),
        };
        for item in items {
            if !item.is_object() {
                return Err(Error::parse(at, "an item that is not an object"));
            }
            out.push(Document {
                source: at.clone(),
                value: item,
            });
        }
    }
    Ok(out)
}

/// Reads `path` whole (`-`: standard input) as text.
///
/// # Errors
/// [`Error::Io`], or [`Error::Parse`] for text that is not UTF-8.
pub fn read_text(path: &Path) -> Result<String> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("-", e))?;
    } else {
        bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    }
    String::from_utf8(bytes).map_err(|_| Error::parse(path, "not UTF-8 text"))
}

/// Every object of `paths` (files, directories, `-`), in order.
///
/// # Errors
/// The first file that cannot be read or parsed.
pub fn read_all(paths: &[PathBuf], recursive: bool) -> Result<Vec<Document>> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() != "-" && !path.exists() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            ));
        }
        for file in files(path, recursive)? {
            let text = read_text(&file)?;
            let json = file.extension().and_then(|e| e.to_str()) == Some("json");
            out.extend(parse(&text, &file.display().to_string(), json)?);
        }
    }
    Ok(out)
}

/// The one object of `path` (for `create -f`).
///
/// # Errors
/// As [`read_all`], and [`Error::Parse`] when the file holds more or less than one object.
pub fn read_one(path: &Path) -> Result<Value> {
    let mut docs = read_all(&[path.to_owned()], false)?;
    match docs.len() {
        1 => Ok(docs.remove(0).value),
        n => Err(Error::parse(
            path,
            format!("holds {n} objects; create takes one (use apply -f for more)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_documents_json_and_lists() {
        type Want = Result<Vec<&'static str>, &'static str>;
        let cases: &[(&str, bool, Want)] = &[
            ("kind: A\n---\nkind: B\n", false, Ok(vec!["f#1", "f#2"])),
            (
                "---\nkind: A\n---\n# only a comment\n",
                false,
                Ok(vec!["f#1"]),
            ),
            ("kind: A\n", false, Ok(vec!["f"])),
            ("", false, Ok(vec![])),
            (
                r#"{"kind":"List","items":[{"kind":"A"},{"kind":"B"}]}"#,
                true,
                Ok(vec!["f", "f"]),
            ),
            (r#"[{"kind":"A"}]"#, true, Ok(vec!["f"])),
            ("kind: [\n", false, Err("f#1")),
            ("- 1\n- 2\n", false, Err("f")),
            ("just text\n", false, Err("f")),
            ("{", true, Err("f")),
        ];
        for (text, json, want) in cases {
            let got = parse(text, "f", *json);
            match (got, want) {
                (Ok(docs), Ok(sources)) => {
                    let got: Vec<&str> = docs.iter().map(|d| d.source.as_str()).collect();
                    assert_eq!(&got, sources, "{text}");
                }
                (Err(Error::Parse { path, .. }), Err(at)) => {
                    assert_eq!(path, Path::new(at), "{text}")
                }
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn directories_are_read_sorted_and_recursive_on_demand() {
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path();
        fs::write(d.join("b.yaml"), "kind: B\n").expect("w");
        fs::write(d.join("a.json"), r#"{"kind":"A"}"#).expect("w");
        fs::write(d.join("c.yml"), "kind: C\n").expect("w");
        fs::write(d.join("notes.txt"), "not yaml: [").expect("w");
        fs::create_dir(d.join("sub")).expect("mkdir");
        fs::write(d.join("sub").join("d.yaml"), "kind: D\n").expect("w");
        let kinds = |recursive| {
            read_all(&[d.to_owned()], recursive)
                .expect("read")
                .iter()
                .map(|doc| doc.value["kind"].as_str().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(false), ["A", "B", "C"]);
        assert_eq!(kinds(true), ["A", "B", "C", "D"]);
        assert!(matches!(
            read_all(&[d.join("missing.yaml")], false),
            Err(Error::Io { .. })
        ));
        assert!(read_one(&d.join("b.yaml")).is_ok());
        fs::write(d.join("two.yaml"), "kind: A\n---\nkind: B\n").expect("w");
        assert!(matches!(
            read_one(&d.join("two.yaml")),
            Err(Error::Parse { .. })
        ));
    }
}
