//! `POST /api/v1/tenants/{tenant}/mailboxes:import`: many Mailboxes at once, from CSV or
//! JSON, with one result per row (docs/rest-api.md, "Bulk import").
//!
//! Every row goes through the same checks as a single `PUT` ([`super::mailboxes::
//! parse_mailbox`], then the backend's validation of the whole set), so a row the import
//! refuses is one a `PUT` would refuse, with the same field errors. A row naming an existing
//! Mailbox (by name, or by address when it has no name) replaces it; a row without `password`
//! keeps the existing Mailbox's credentials. Rows fail alone: the others are imported.
//! Limits: [`MAX_ROWS`] rows and [`MAX_IMPORT_BODY`] octets (422 and 413 for the whole
//! request, nothing imported).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::{IntoParams, ToSchema};

use super::mailboxes::parse_mailbox;
use super::{authorize, backend, backend_error};
use crate::AppState;
use crate::auth::Principal;
use crate::backend::{Kind, ListQuery, Outcome, Write, WriteMode};
use crate::problem::{ApiError, FieldError};
use crate::rbac::{Group, Verb};

/// Most rows of one import.
pub const MAX_ROWS: usize = 10_000;
/// Largest import body, octets.
pub const MAX_IMPORT_BODY: usize = 10 * 1024 * 1024;
/// The CSV columns; `address` is required, the others optional, in any order.
pub const CSV_COLUMNS: &[&str] = &[
    "name",
    "address",
    "displayName",
    "password",
    "quotaStorage",
    "quotaMessages",
    "aliases",
    "state",
];

/// Query parameters of an import.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `true`: check every row, write nothing; outcomes say what would happen.
    #[serde(rename = "dryRun", default)]
    #[param(rename = "dryRun")]
    pub dry_run: Option<bool>,
}

/// One element of a JSON import.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRow {
    /// The Mailbox's name; default: the existing Mailbox of `spec.address`, else derived
    /// from the address (`alice@example.com` -> `alice.example.com`).
    #[serde(default)]
    pub name: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// The Mailbox's spec (`spec.tenant` may be left out).
    #[schema(value_type = Object)]
    pub spec: Value,
    /// Password (write-only): becomes the Secret `<name>-password`.
    #[serde(default)]
    pub password: Option<String>,
}

/// What happened to one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RowOutcome {
    /// A new Mailbox.
    Created,
    /// An existing Mailbox changed.
    Updated,
    /// An existing Mailbox was already like this.
    Unchanged,
    /// Refused; see `error`.
    Error,
}

/// The result of one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RowResult {
    /// The row: 1 for the first data row (the CSV header is not counted), or the JSON
    /// array index plus 1.
    pub row: usize,
    /// The Mailbox's name, when the row gave or implied one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What happened.
    pub outcome: RowOutcome,
    /// Why the row was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The fields at fault, as in a 422 problem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Counts of the outcomes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportSummary {
    /// Rows created.
    pub created: usize,
    /// Rows updated.
    pub updated: usize,
    /// Rows unchanged.
    pub unchanged: usize,
    /// Rows refused.
    pub failed: usize,
}

/// The answer of an import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportResult {
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// Counts.
    pub summary: ImportSummary,
    /// One result per row, in order.
    pub results: Vec<RowResult>,
}

fn whole(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(vec![FieldError {
        field: field.to_owned(),
        message: message.into(),
    }])
}

/// A row turned into a Mailbox body, or why it cannot be.
type RowBody = Result<Map<String, Value>, ApiError>;

/// The rows of a CSV body (RFC 4180; a UTF-8 BOM is skipped).
fn csv_rows(body: &[u8]) -> Result<Vec<RowBody>, ApiError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| whole("header", format!("cannot be read: {e}")))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(whole(
            "header",
            format!(
                "is missing: the first line names the columns ({})",
                CSV_COLUMNS.join(",")
            ),
        ));
    }
    for (i, h) in header.iter().enumerate() {
        if !CSV_COLUMNS.contains(&h.as_str()) {
            return Err(whole(
                "header",
                format!("unknown column {h:?} (columns: {})", CSV_COLUMNS.join(", ")),
            ));
        }
        if header[..i].contains(h) {
            return Err(whole("header", format!("column {h:?} appears twice")));
        }
    }
    if !header.iter().any(|h| h == "address") {
        return Err(whole("header", "needs the column \"address\""));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        if rows.len() == MAX_ROWS {
            return Err(whole("body", format!("more than {MAX_ROWS} rows")));
        }
        let row = match record {
            Err(e) => Err(ApiError::bad_request(format!(
                "not a valid CSV record: {e}"
            ))),
            Ok(r) if r.len() != header.len() => Err(ApiError::bad_request(format!(
                "has {} fields, the header has {}",
                r.len(),
                header.len()
            ))),
            Ok(r) => csv_row(&header, &r),
        };
        rows.push(row);
    }
    Ok(rows)
}

fn csv_row(header: &[String], record: &csv::StringRecord) -> RowBody {
    let mut spec = Map::new();
    let mut quota = Map::new();
    let mut out = Map::new();
    for (h, v) in header.iter().zip(record.iter()) {
        if v.is_empty() {
            continue;
        }
        // A quoted field may hold line breaks; in these columns one means a quote that was
        // never closed and swallowed the following lines.
        if v.chars().any(char::is_control) {
            return Err(whole(
                h,
                "contains a line break or control character (an unterminated quote?)",
            ));
        }
        match h.as_str() {
            "name" => {
                out.insert("metadata".into(), json!({"name": v}));
            }
            "address" | "displayName" | "state" => {
                spec.insert(h.clone(), Value::String(v.to_owned()));
            }
            "password" => {
                out.insert("password".into(), Value::String(v.to_owned()));
            }
            "quotaStorage" => {
                quota.insert("storage".into(), Value::String(v.to_owned()));
            }
            "quotaMessages" => {
                let n: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| whole("quotaMessages", format!("{v:?} is not a whole number")))?;
                quota.insert("messages".into(), json!(n));
            }
            "aliases" => {
                let aliases: Vec<Value> = v
                    .split(';')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(|a| Value::String(a.to_owned()))
                    .collect();
                spec.insert("aliases".into(), Value::Array(aliases));
            }
            _ => {}
        }
    }
    if !quota.is_empty() {
        spec.insert("quota".into(), Value::Object(quota));
    }
    out.insert("spec".into(), Value::Object(spec));
    Ok(out)
}

/// The rows of a JSON body: an array of [`ImportRow`].
fn json_rows(body: &[u8]) -> Result<Vec<RowBody>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("body: not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(whole(
            "body",
            "must be a JSON array of {name?, labels?, spec, password?}",
        ));
    };
    if items.len() > MAX_ROWS {
        return Err(whole("body", format!("more than {MAX_ROWS} rows")));
    }
    Ok(items
        .into_iter()
        .map(|item| {
            let row: ImportRow = super::typed("", &item).map_err(|mut errors| {
                for e in &mut errors {
                    e.field = e.field.trim_start_matches('.').to_owned();
                    if e.field.is_empty() {
                        e.field = "row".into();
                    }
                }
                ApiError::invalid(errors)
            })?;
            let mut out = Map::new();
            let mut meta = Map::new();
            if let Some(n) = row.name {
                meta.insert("name".into(), Value::String(n));
            }
            if let Some(l) = row.labels {
                meta.insert("labels".into(), json!(l));
            }
            if !meta.is_empty() {
                out.insert("metadata".into(), Value::Object(meta));
            }
            out.insert("spec".into(), row.spec);
            if let Some(p) = row.password {
                out.insert("password".into(), Value::String(p));
            }
            Ok(out)
        })
        .collect())
}

/// A Mailbox name from an address: lower-case, `@` and other characters a name cannot hold
/// become `.` and `-`; `None` when nothing usable is left.
pub fn name_from_address(address: &str) -> Option<String> {
    let mut name: String = address
        .to_lowercase()
        .chars()
        .map(|c| match c {
            '@' | '.' => '.',
            c if c.is_ascii_lowercase() || c.is_ascii_digit() => c,
            _ => '-',
        })
        .collect();
    // Labels must start and end alphanumeric.
    name = name
        .split('.')
        .map(|l| l.trim_matches('-'))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    super::is_dns_subdomain(&name, 244).then_some(name)
}

/// Imports Mailboxes from CSV or JSON.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/mailboxes:import",
    operation_id = "importMailboxes",
    tag = "mailboxes",
    params(("tenant" = String, Path, description = "The Tenant's name"), ImportParams),
    request_body(
        description = "`text/csv` with a header row naming columns among name, address (required), displayName, password, quotaStorage, quotaMessages, aliases (`;`-separated), state; or `application/json`, an array of {name?, labels?, spec, password?}. At most 10,000 rows and 10 MiB.",
        content(
            (String = "text/csv"),
            (Vec<ImportRow> = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "One result per row; rows fail alone.", body = ImportResult),
    )
)]
pub async fn import(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(tenant): Path<String>,
    Query(params): Query<ImportParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ImportResult>, ApiError> {
    authorize(&principal, Verb::Create, Group::Mailboxes, &tenant)?;
    authorize(&principal, Verb::Update, Group::Mailboxes, &tenant)?;
    let media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let rows = match media.as_str() {
        "text/csv" => csv_rows(&body)?,
        "application/json" => json_rows(&body)?,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be text/csv or application/json",
            ));
        }
    };
    let dry_run = params.dry_run.unwrap_or(false);
    let backend = backend(&state)?;
    backend
        .get(Kind::Tenant, &tenant, &tenant)
        .await
        .map_err(backend_error)?;

    // The tenant's Mailboxes by address: a row without a name updates the one it names.
    let mut existing: BTreeMap<String, (String, Value)> = BTreeMap::new();
    let mut from = None;
    loop {
        let page = backend
            .list(
                Kind::Mailbox,
                ListQuery {
                    tenant: Some(tenant.clone()),
                    limit: super::MAX_LIMIT,
                    from: from.take(),
                    selector: Default::default(),
                },
            )
            .await
            .map_err(backend_error)?;
        for item in page.items {
            let o = item.object;
            let address = o
                .pointer("/spec/address")
                .and_then(Value::as_str)
                .unwrap_or("");
            let name = o
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let creds = o
                .pointer("/spec/credentials")
                .cloned()
                .unwrap_or(Value::Null);
            existing.insert(address.to_lowercase(), (name.to_owned(), creds));
        }
        match page.next {
            Some(n) => from = Some(n),
            None => break,
        }
    }
    let by_name: BTreeMap<&str, &Value> = existing.values().map(|(n, c)| (n.as_str(), c)).collect();

    let n = rows.len();
    let mut results: Vec<Option<RowResult>> = (0..n).map(|_| None).collect();
    let mut writes = Vec::new();
    let mut write_rows = Vec::new();
    let mut seen_address: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_name: BTreeMap<String, usize> = BTreeMap::new();
    for (i, row) in rows.into_iter().enumerate() {
        let fail = |name: Option<String>, e: ApiError| RowResult {
            row: i + 1,
            name,
            outcome: RowOutcome::Error,
            error: Some(e.detail.clone()),
            errors: e.errors,
        };
        let mut body = match row {
            Ok(b) => b,
            Err(e) => {
                results[i] = Some(fail(None, e));
                continue;
            }
        };
        let address = body
            .get("spec")
            .and_then(|s| s.get("address"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        let given = body
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let name = given
            .or_else(|| existing.get(&address).map(|(n, _)| n.clone()))
            .or_else(|| name_from_address(&address));
        let Some(name) = name else {
            results[i] = Some(fail(
                None,
                whole("name", "cannot be derived from the address; give a name"),
            ));
            continue;
        };
        if !address.is_empty()
            && let Some(first) = seen_address.insert(address.clone(), i + 1)
        {
            results[i] = Some(fail(
                Some(name),
                whole(
                    "spec.address",
                    format!("{address:?} is also in row {first}"),
                ),
            ));
            continue;
        }
        if let Some(first) = seen_name.insert(name.clone(), i + 1) {
            results[i] = Some(fail(
                Some(name.clone()),
                whole("name", format!("{name:?} is also in row {first}")),
            ));
            continue;
        }
        let meta = body
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = meta.as_object_mut() {
            m.insert("name".into(), Value::String(name.clone()));
        }
        // Without a password, an existing Mailbox keeps its credentials.
        if !body.contains_key("password")
            && let Some(creds) = by_name.get(name.as_str())
            && let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut)
            && !spec.contains_key("credentials")
        {
            spec.insert("credentials".into(), (*creds).clone());
        }
        match parse_mailbox(&tenant, Value::Object(body), None) {
            Ok((parsed, secrets)) => {
                writes.push(Write {
                    kind: Kind::Mailbox,
                    tenant: tenant.clone(),
                    object: parsed.object,
                    secrets,
                    mode: WriteMode::Apply(None),
                    dry_run,
                });
                write_rows.push((i, name));
            }
            Err(e) => results[i] = Some(fail(Some(name), e)),
        }
    }
    let written = backend.write_batch(writes).await;
    for ((i, name), r) in write_rows.into_iter().zip(written) {
        results[i] = Some(match r {
            Ok(w) => RowResult {
                row: i + 1,
                name: Some(name),
                outcome: match w.outcome {
                    Outcome::Created => RowOutcome::Created,
                    Outcome::Updated => RowOutcome::Updated,
                    Outcome::Unchanged => RowOutcome::Unchanged,
                },
                error: None,
                errors: Vec::new(),
            },
            Err(e) => {
                let e = backend_error(e);
                RowResult {
                    row: i + 1,
                    name: Some(name),
                    outcome: RowOutcome::Error,
                    error: Some(e.detail.clone()),
                    errors: e.errors,
                }
            }
        });
    }
    let results: Vec<RowResult> = results.into_iter().flatten().collect();
    let mut summary = ImportSummary::default();
    for r in &results {
        match r.outcome {
            RowOutcome::Created => summary.created += 1,
            RowOutcome::Updated => summary.updated += 1,
            RowOutcome::Unchanged => summary.unchanged += 1,
            RowOutcome::Error => summary.failed += 1,
        }
    }
    tracing::info!(by = %principal.subject, %tenant, dry_run, created = summary.created,
        updated = summary.updated, unchanged = summary.unchanged, failed = summary.failed,
        "REST: mailboxes imported");
    Ok(Json(ImportResult {
        dry_run,
        summary,
        results,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_addresses() {
        let cases = [
            ("alice@example.com", Some("alice.example.com")),
            (
                "Bob.Smith+tag@Example.COM",
                Some("bob.smith-tag.example.com"),
            ),
            ("_x_@a.b", Some("x.a.b")),
            ("@@@", None),
            ("", None),
        ];
        for (address, want) in cases {
            assert_eq!(name_from_address(address).as_deref(), want, "{address}");
        }
    }
}
