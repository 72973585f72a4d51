//! The quarantine endpoints of the admin API, under [`QUARANTINE_PATH`] (contract types in
//! [`mcp_crds::dataplane`]; behaviour in [`crate::store::quarantine`]).
//!
//! Every entry belongs to a tenant; this API sees only its own tenant's entries (another
//! tenant's id answers 404, like an unknown one). Ids are checked to be exactly 44
//! lower-case hex digits before anything is looked up, so a malformed or hostile path
//! segment (`..`, `%2F`, quotes) is a 400 naming `id`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mcp_crds::dataplane::{
    QUARANTINE_DEFAULT_LIMIT, QUARANTINE_MAX_LIMIT, QUARANTINE_PATH, QuarantineEntry,
    QuarantineList, ReleaseOutcome,
};

use super::{AppState, json, percent_decode, store_unavailable};
use crate::admin::ApiError;
use crate::standalone::apply;
use crate::store::{
    BlobError, Quarantine, QuarantineError, QuarantineId, QuarantineQuery, QuarantinedMessage,
    StoreError,
};

/// Media type of a quarantined message's body.
pub const MESSAGE_RFC822: &str = "message/rfc822";

/// The entry as the API shows it.
pub fn entry(m: &QuarantinedMessage) -> QuarantineEntry {
    QuarantineEntry {
        id: m.id.to_string(),
        tenant: m.tenant.clone(),
        mailbox: m.account_address.clone(),
        recipient: m.recipient.clone(),
        mail_from: m.mail_from.clone(),
        stage: m.stage,
        folder: m.folder.clone(),
        reason: m.reason.clone(),
        pipeline: m.pipeline.clone(),
        step: m.step.clone(),
        revision: m.revision.clone(),
        size: u64::from(m.size),
        flags: m.flags.clone(),
        internal_date: m.internal_date.to_rfc3339(),
        created_at: m
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// The query parameters as (name, value) pairs, percent-decoded; each name at most once and
/// one of `allowed`.
pub(super) fn query_params(uri: &Uri, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode(s)
                .ok_or_else(|| ApiError::bad_request("query: not valid percent-encoded UTF-8"))
        };
        let (name, value) = (decode(name)?, decode(value)?);
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "{name}: unknown query parameter (allowed: {})",
                allowed.join(", ")
            )));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(ApiError::bad_request(format!(
                "{name}: given more than once"
            )));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// The `{id}` segment of `{QUARANTINE_PATH}/{id}[/...]`, checked.
fn path_id(uri: &Uri) -> Result<QuarantineId, ApiError> {
    let segment = uri
        .path()
        .strip_prefix(QUARANTINE_PATH)
        .and_then(|p| p.strip_prefix('/'))
        .and_then(|p| p.split('/').next())
        .unwrap_or("");
    segment
        .parse()
        .map_err(|e| ApiError::bad_request(format!("id: {e}")))
}

fn not_found(id: &QuarantineId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("id: no quarantined message {id} (never held, or released or deleted)"),
    )
}

/// The API error of a quarantine error.
fn api_error(e: QuarantineError) -> ApiError {
    match e {
        QuarantineError::NotFound(id) => not_found(&id),
        e @ (QuarantineError::AccountGone { .. } | QuarantineError::NoFolder { .. }) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        // The release would take the account over quota; the message stays held.
        QuarantineError::Store(e @ StoreError::OverQuota(_)) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        QuarantineError::Store(e) => store_unavailable(e),
        QuarantineError::Blob(BlobError::Io(e)) => {
            tracing::error!(error = %e, "admin API: blob store failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the blob store failed; retry later ({e})"),
            )
        }
        e => {
            tracing::error!(error = %e, "admin API: quarantine failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

impl AppState {
    fn quarantine(&self) -> Quarantine {
        Quarantine::new(self.admin.store.clone(), self.admin.blobs.clone())
    }

    /// The entry `id` if it belongs to this tenant.
    async fn own_entry(&self, id: &QuarantineId) -> Result<QuarantinedMessage, ApiError> {
        let entry = self.quarantine().get(id).await.map_err(api_error)?;
        if entry.tenant != self.admin.tenant {
            return Err(not_found(id));
        }
        Ok(entry)
    }
}

/// `GET {QUARANTINE_PATH}?mailbox=ADDR&limit=N&after=ID`.
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let admin = &state.admin;
    let mut query = QuarantineQuery {
        tenant: admin.tenant.clone(),
        account: None,
        after: None,
        limit: QUARANTINE_DEFAULT_LIMIT,
    };
    let mut mailbox = None;
    for (name, value) in query_params(&uri, &["mailbox", "limit", "after"])? {
        match name.as_str() {
            "limit" => {
                query.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=QUARANTINE_MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "limit: {value:?} is not an integer from 1 to {QUARANTINE_MAX_LIMIT}"
                        ))
                    })?;
            }
            "after" => {
                query.after = Some(
                    value
                        .parse()
                        .map_err(|e| ApiError::bad_request(format!("after: {e}")))?,
                );
            }
            _ => mailbox = Some(value),
        }
    }
    if let Some(address) = mailbox {
        if address.chars().count() > super::MAX_ADDRESS_LEN {
            return Err(ApiError::bad_request(format!(
                "mailbox: longer than {} characters",
                super::MAX_ADDRESS_LEN
            )));
        }
        let spec = mcp_crds::MailboxSpec {
            tenant: admin.tenant.clone(),
            address,
            ..Default::default()
        };
        apply::check_addresses(&spec, &admin.domains)
            .map_err(|e| ApiError::bad_request(format!("mailbox: {}", e.message)))?;
        let account = admin
            .store
            .account_by_recipient(&spec.address)
            .await
            .map_err(store_unavailable)?
            .filter(|a| a.tenant == admin.tenant);
        match account {
            Some(a) => query.account = Some(a.id),
            // No such mailbox: nothing is quarantined for it.
            None => return Ok(json(&QuarantineList::default())),
        }
    }
    let items = state.quarantine().list(&query).await.map_err(api_error)?;
    let next = (u32::try_from(items.len()) == Ok(query.limit))
        .then(|| items.last().map(|m| m.id.to_string()))
        .flatten();
    Ok(json(&QuarantineList {
        items: items.iter().map(entry).collect(),
        next,
    }))
}

/// The original message as `message/rfc822`.
async fn raw_message(state: &AppState, id: &QuarantineId) -> Result<Response, ApiError> {
    state.own_entry(id).await?;
    let (_, body) = state.quarantine().message(id).await.map_err(api_error)?;
    Ok((StatusCode::OK, [(CONTENT_TYPE, MESSAGE_RFC822)], body).into_response())
}

/// `GET {QUARANTINE_PATH}/{id}[?raw=1]`.
pub(super) async fn get_entry(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = path_id(&uri)?;
    let mut raw = false;
    for (_, value) in query_params(&uri, &["raw"])? {
        raw = match value.as_str() {
            "1" | "true" => true,
            "0" | "false" => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "raw: {other:?} is not 1, true, 0 or false"
                )));
            }
        };
    }
    if raw {
        return raw_message(&state, &id).await;
    }
    Ok(json(&entry(&state.own_entry(&id).await?)))
}

/// `GET {QUARANTINE_PATH}/{id}/message`.
pub(super) async fn get_message(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = path_id(&uri)?;
    query_params(&uri, &[])?;
    raw_message(&state, &id).await
}

/// `POST {QUARANTINE_PATH}/{id}/release`.
pub(super) async fn release(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = path_id(&uri)?;
    query_params(&uri, &[])?;
    let entry = state.own_entry(&id).await?;
    let released = state.quarantine().release(&id).await.map_err(api_error)?;
    Ok(json(&ReleaseOutcome {
        id: id.to_string(),
        mailbox: entry.account_address.unwrap_or_default(),
        folder: released.folder,
        uid_validity: released.uid_validity.0,
        uid: released.uid.0,
    }))
}

/// `DELETE {QUARANTINE_PATH}/{id}`: 204.
pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = path_id(&uri)?;
    query_params(&uri, &[])?;
    state.own_entry(&id).await?;
    state.quarantine().delete(&id).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
