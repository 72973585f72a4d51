//! The commands: each module one group; [`run`] dispatches the command line.

pub mod apply;
pub mod import;
pub mod login;
pub mod resources;

use clap::CommandFactory;

use crate::cli::{
    ApiKeysCmd, Cli, Command, FileResourceCmd, MailboxesCmd, PluginsCmd, QuarantineCmd, TenantsCmd,
};
use crate::config;
use crate::error::Result;
use crate::kinds::Resource;
use crate::manifest;
use crate::session::{self, Session};

/// Runs the command line `cli`.
///
/// # Errors
/// The command's error; its [`crate::error::Error::exit_code`] is the process's.
pub fn run(cli: Cli) -> Result<()> {
    let global = &cli.global;
    let path = || config::default_path(|k| std::env::var(k).ok());
    match &cli.command {
        Command::Completion { shell } => {
            // Into a buffer: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "mcp-cli", &mut script);
            resources::print(&String::from_utf8_lossy(&script));
            return Ok(());
        }
        Command::Login(args) => return login::login(global, args, &path()?),
        Command::Logout => return login::logout(global, &path()?),
        Command::Contexts => {
            let cfg = config::load(&path()?)?;
            resources::print(&login::contexts_table(&cfg));
            return Ok(());
        }
        Command::UseContext { name } => return login::use_context(name, &path()?),
        _ => {}
    }
    let config = config::load(&path()?)?;
    let target = session::resolve(global, &config)?;
    let context_tenant = config
        .context(global.context.as_deref())
        .and_then(|c| c.tenant.clone());
    let s = Session::new(target, global.output)?;
    match &cli.command {
        Command::Tenants(cmd) => match cmd {
            TenantsCmd::List(a) => resources::list(&s, Resource::Tenants, selector(&a.selector)),
            TenantsCmd::Get(n) => resources::get(&s, Resource::Tenants, &n.name),
            TenantsCmd::Create(a) => {
                let body = resources::tenant_body(a)?;
                resources::create(&s, Resource::Tenants, body, a.dry_run).map(drop)
            }
            TenantsCmd::Delete(n) => resources::delete(&s, Resource::Tenants, &n.name),
        },
        Command::Mailboxes(cmd) => match cmd {
            MailboxesCmd::List(a) => {
                resources::list(&s, Resource::Mailboxes, selector(&a.selector))
            }
            MailboxesCmd::Get(n) => resources::get(&s, Resource::Mailboxes, &n.name),
            MailboxesCmd::Create(a) => {
                s.tenant()?;
                let pw = resources::read_password(a.password_stdin, a.password_file.as_deref())?;
                let body = resources::mailbox_body(a, pw)?;
                resources::create(&s, Resource::Mailboxes, body, a.dry_run).map(drop)
            }
            MailboxesCmd::Delete(n) => resources::delete(&s, Resource::Mailboxes, &n.name),
            MailboxesCmd::Import(a) => import::import(&s, a),
        },
        Command::Pipelines(cmd) => file_resource(&s, Resource::Pipelines, cmd),
        Command::Policies(cmd) => file_resource(&s, Resource::Policies, cmd),
        Command::MigrationJobs(cmd) => file_resource(&s, Resource::MigrationJobs, cmd),
        Command::Plugins(cmd) => match cmd {
            PluginsCmd::List(a) => resources::list(&s, Resource::Plugins, selector(&a.selector)),
            PluginsCmd::Get(n) => resources::get(&s, Resource::Plugins, &n.name),
            PluginsCmd::Create(a) => {
                let body = manifest::read_one(&a.file)?;
                resources::create(&s, Resource::Plugins, body, a.dry_run).map(drop)
            }
            PluginsCmd::Delete(n) => resources::delete(&s, Resource::Plugins, &n.name),
            PluginsCmd::Enable(n) => resources::action(&s, Resource::Plugins, &n.name, "enable"),
            PluginsCmd::Disable(n) => resources::action(&s, Resource::Plugins, &n.name, "disable"),
        },
        Command::ApiKeys(cmd) => match cmd {
            ApiKeysCmd::List => resources::list(&s, Resource::ApiKeys, Vec::new()),
            ApiKeysCmd::Get(n) => resources::get(&s, Resource::ApiKeys, &n.name),
            ApiKeysCmd::Create(a) => {
                let body = resources::api_key_body(a, s.tenant.as_deref())?;
                resources::create_api_key(&s, body)
            }
            ApiKeysCmd::Delete(n) => resources::delete(&s, Resource::ApiKeys, &n.name),
        },
        Command::Quarantine(cmd) => match cmd {
            QuarantineCmd::List { mailbox } => {
                let q = mailbox.iter().map(|m| ("mailbox", m.clone())).collect();
                resources::list(&s, Resource::Quarantine, q)
            }
            QuarantineCmd::Get(i) => resources::get(&s, Resource::Quarantine, &i.id),
            QuarantineCmd::Release(i) => {
                resources::action(&s, Resource::Quarantine, &i.id, "release")
            }
            QuarantineCmd::Delete(i) => resources::delete(&s, Resource::Quarantine, &i.id),
        },
        Command::Apply(a) => {
            let docs = manifest::read_all(&a.sources.files, a.sources.recursive)?;
            no_objects(&docs)?;
            apply::apply(
                &s,
                &docs,
                global.tenant.as_deref(),
                context_tenant.as_deref(),
                a.dry_run,
            )
        }
        Command::Delete(a) => {
            let docs = manifest::read_all(&a.sources.files, a.sources.recursive)?;
            no_objects(&docs)?;
            apply::delete(
                &s,
                &docs,
                global.tenant.as_deref(),
                context_tenant.as_deref(),
                a.dry_run,
                a.ignore_not_found,
            )
        }
        Command::Completion { .. }
        | Command::Login(_)
        | Command::Logout
        | Command::Contexts
        | Command::UseContext { .. } => Ok(()),
    }
}

/// An error when `-f` found nothing (as `kubectl`: "no objects passed").
fn no_objects(docs: &[manifest::Document]) -> Result<()> {
    if docs.is_empty() {
        return Err(crate::error::Error::Partial(
            "no objects passed: the files hold no documents (a directory: *.yaml, *.yml, \
             *.json; -R for subdirectories)"
                .into(),
        ));
    }
    Ok(())
}

/// The query of a label selector.
fn selector(s: &Option<String>) -> Vec<(&'static str, String)> {
    s.iter().map(|s| ("labelSelector", s.clone())).collect()
}

/// The commands of a collection created from files only.
fn file_resource(s: &Session, resource: Resource, cmd: &FileResourceCmd) -> Result<()> {
    match cmd {
        FileResourceCmd::List(a) => resources::list(s, resource, selector(&a.selector)),
        FileResourceCmd::Get(n) => resources::get(s, resource, &n.name),
        FileResourceCmd::Create(a) => {
            let body = manifest::read_one(&a.file)?;
            resources::create(s, resource, body, a.dry_run).map(drop)
        }
        FileResourceCmd::Delete(n) => resources::delete(s, resource, &n.name),
    }
}
