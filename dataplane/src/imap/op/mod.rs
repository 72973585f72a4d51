//! Command handlers, one file per command or close family of commands (RFC 9051 §6).
//!
//! [`dispatch`] checks that a command is allowed in the session's state (RFC 9051 §3) and
//! calls its handler. A handler writes untagged responses into the session's output buffer
//! and returns the tagged [`Completion`].

mod any;
mod append;
mod auth;
mod copy;
mod expunge;
mod fetch;
mod idle;
mod list;
mod mailboxes;
mod quota;
mod search;
mod select;
mod store;

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::mailbox::Mailbox;

use super::session::{Completion, OpResult, Session, State};
use super::wire::parse::{Request, mailbox_name};

/// Upper-case command name for logs and metrics, with `UID ` for UID commands.
pub(crate) fn command_name(req: &Request) -> &'static str {
    let body = match req {
        Request::List(_) => return "LIST",
        Request::Command { body, .. } => body,
    };
    let uid = is_uid_command(body);
    match (body.name(), uid) {
        ("FETCH", true) => "UID FETCH",
        ("STORE", true) => "UID STORE",
        ("COPY", true) => "UID COPY",
        ("MOVE", true) => "UID MOVE",
        ("SEARCH", true) => "UID SEARCH",
        ("EXPUNGE", true) => "UID EXPUNGE",
        (name, _) => name,
    }
}

/// True for the UID forms, whose responses carry UIDs and may announce EXPUNGE
/// (RFC 9051 §6.4.9, §7.5.1).
fn is_uid_command(body: &CommandBody<'_>) -> bool {
    matches!(
        body,
        CommandBody::Fetch { uid: true, .. }
            | CommandBody::Store { uid: true, .. }
            | CommandBody::Copy { uid: true, .. }
            | CommandBody::Move { uid: true, .. }
            | CommandBody::Search { uid: true, .. }
            | CommandBody::ExpungeUid { .. }
    )
}

fn required_state(body: &CommandBody<'_>) -> State {
    match body {
        CommandBody::Capability
        | CommandBody::Noop
        | CommandBody::Logout
        | CommandBody::Id { .. }
        | CommandBody::StartTLS
        | CommandBody::Authenticate { .. }
        | CommandBody::Login { .. } => State::NotAuthenticated,
        CommandBody::Check
        | CommandBody::Close
        | CommandBody::Unselect
        | CommandBody::Expunge
        | CommandBody::ExpungeUid { .. }
        | CommandBody::Search { .. }
        | CommandBody::Fetch { .. }
        | CommandBody::Store { .. }
        | CommandBody::Copy { .. }
        | CommandBody::Move { .. } => State::Selected,
        _ => State::Authenticated,
    }
}

/// Runs one parsed command.
pub(crate) async fn dispatch(s: &mut Session, tag: &str, req: Request) -> OpResult {
    let (body, search_return, uses_saved, status_append_limit) = match req {
        Request::List(list) => {
            if s.state() == State::NotAuthenticated {
                return Ok(Completion::bad("Not authenticated"));
            }
            return list::list(s, list).await;
        }
        Request::Command {
            body,
            search_return,
            uses_saved_result,
            status_append_limit,
        } => (body, search_return, uses_saved_result, status_append_limit),
    };
    let need = required_state(&body);
    match (need, s.state()) {
        (State::Authenticated, State::NotAuthenticated)
        | (State::Selected, State::NotAuthenticated) => {
            return Ok(Completion::bad("Not authenticated"));
        }
        (State::Selected, State::Authenticated) => {
            return Ok(Completion::bad("No mailbox selected"));
        }
        _ => {}
    }
    s.uid_command = is_uid_command(&body);
    let restricts_expunge = matches!(
        body,
        CommandBody::Fetch { uid: false, .. }
            | CommandBody::Store { uid: false, .. }
            | CommandBody::Search { uid: false, .. }
    );
    let saved = uses_saved.then(|| s.saved_result.clone());
    let completion = match body {
        CommandBody::Capability => any::capability(s),
        CommandBody::Noop | CommandBody::Check => any::noop(s).await,
        CommandBody::Logout => any::logout(s),
        CommandBody::Id { parameters } => any::id(s, parameters.as_deref()),
        CommandBody::Enable { capabilities } => any::enable(s, capabilities.as_ref()),
        CommandBody::StartTLS => return auth::starttls(s, tag).await,
        CommandBody::Login { username, password } => {
            auth::login(s, username.as_ref(), password.declassify().as_ref()).await
        }
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        } => {
            auth::authenticate(
                s,
                &mechanism,
                initial_response.as_ref().map(|r| r.declassify().as_ref()),
            )
            .await
        }
        CommandBody::Select { mailbox, .. } => select::select(s, &mailbox, false).await,
        CommandBody::Examine { mailbox, .. } => select::select(s, &mailbox, true).await,
        CommandBody::Unselect => select::unselect(s),
        CommandBody::Close => select::close(s).await,
        CommandBody::Create { mailbox } => mailboxes::create(s, &mailbox).await,
        CommandBody::Delete { mailbox } => mailboxes::delete(s, &mailbox).await,
        CommandBody::Rename { from, to } => mailboxes::rename(s, &from, &to).await,
        CommandBody::Subscribe { mailbox } => mailboxes::subscribe(s, &mailbox, true).await,
        CommandBody::Unsubscribe { mailbox } => mailboxes::subscribe(s, &mailbox, false).await,
        CommandBody::Namespace => mailboxes::namespace(s),
        CommandBody::Status {
            mailbox,
            item_names,
        } => mailboxes::status(s, &mailbox, &item_names, status_append_limit).await,
        CommandBody::GetQuota { root } => quota::get_quota(s, root.as_ref()).await,
        CommandBody::GetQuotaRoot { mailbox } => quota::get_quota_root(s, &mailbox).await,
        CommandBody::SetQuota { .. } => Ok(quota::set_quota()),
        CommandBody::Lsub {
            reference,
            mailbox_wildcard,
        } => list::lsub(s, &reference, &mailbox_wildcard).await,
        CommandBody::Append {
            mailbox,
            flags,
            date,
            message,
        } => append::append(s, &mailbox, &flags, date.as_ref(), message).await,
        CommandBody::Idle => return idle::idle(s).await,
        CommandBody::Expunge => expunge::expunge(s, None).await,
        CommandBody::ExpungeUid { sequence_set } => {
            expunge::expunge(s, Some((&sequence_set, saved.as_deref()))).await
        }
        CommandBody::Search {
            charset,
            criteria,
            uid,
        } => {
            search::search(
                s,
                tag,
                charset.as_ref(),
                criteria.as_ref(),
                uid,
                search_return,
                saved.as_deref(),
            )
            .await
        }
        CommandBody::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
            ..
        } => fetch::fetch(s, &sequence_set, macro_or_item_names, uid, saved.as_deref()).await,
        CommandBody::Store {
            sequence_set,
            kind,
            response,
            flags,
            uid,
            modifiers,
        } => {
            store::store(
                s,
                &sequence_set,
                kind,
                response,
                &flags,
                uid,
                &modifiers,
                saved.as_deref(),
            )
            .await
        }
        CommandBody::Copy {
            sequence_set,
            mailbox,
            uid,
        } => copy::copy_or_move(s, &sequence_set, &mailbox, uid, false, saved.as_deref()).await,
        CommandBody::Move {
            sequence_set,
            mailbox,
            uid,
        } => copy::copy_or_move(s, &sequence_set, &mailbox, uid, true, saved.as_deref()).await,
        other => Ok(Completion::bad(format!(
            "Command {} is not supported",
            other.name()
        ))),
    }?;
    // Untagged updates may follow any command; EXPUNGE only where RFC 9051 §7.5.1 allows.
    if s.state() == State::Selected && completion.status != super::session::Status::Bad {
        s.sync_selected(!restricts_expunge, false).await?;
    }
    Ok(completion)
}

/// Decodes a mailbox argument to its stored UTF-8 name (`INBOX` normalised).
pub(crate) fn mailbox_arg(s: &Session, mailbox: &Mailbox<'_>) -> Result<String, Completion> {
    match mailbox {
        Mailbox::Inbox => Ok("INBOX".into()),
        Mailbox::Other(other) => {
            let name = mailbox_name(other.inner().as_ref(), s.utf8).map_err(Completion::bad)?;
            validate_name(&name)?;
            Ok(name)
        }
    }
}

/// Rejects names MCP cannot store: empty levels, control characters, wildcards.
pub(crate) fn validate_name(name: &str) -> Result<(), Completion> {
    if name.is_empty() || name.len() > 1024 {
        return Err(Completion::no("Invalid mailbox name length"));
    }
    if name.split('/').any(str::is_empty) {
        return Err(Completion::no(
            "Invalid mailbox name: empty hierarchy level",
        ));
    }
    if name.chars().any(|c| c.is_control() || c == '*' || c == '%') {
        return Err(Completion::no("Invalid mailbox name: forbidden character"));
    }
    Ok(())
}
