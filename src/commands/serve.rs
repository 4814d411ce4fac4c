//! `serve` and `serve --demo`: the service of docs/service.md on a tokio multi-thread runtime,
//! with the commands' own read plan (`careledger::service_plan`) handed to it, holding the key
//! directory's vault when the store has encryption on (the writer seals, the views open).
//!
//! This module owns starting and stopping the service, the demo's store (encrypted, as `init`
//! makes one) and its accounts; it must never handle a request itself (that is the `server`
//! crate).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use careledger::service_plan::ServicePlan;
use server::accounts::{Book, NewAccount};
use server::admin::AdminResponse;
use server::policy::{Role, Scope};
use store::Store;
use vault::Vault;

/// Serves `store` on `listen` until Ctrl-C or SIGTERM, then closes it. `vault`: the key
/// directory's, when the store has encryption on (`None`: a store in clear).
pub fn serve(store: Store, vault: Option<Vault>, listen: SocketAddr) -> Result<()> {
    let encrypted = vault.is_some();
    let vault = vault.map(Arc::new);
    let store = Arc::new(store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| crate::CliError::Environment(format!("listening on {listen}: {e}")))?;
        let (state, task) = server::AppState::start(
            store.clone(),
            Arc::new(ServicePlan::new(vault.clone())),
            server::Limits::default(),
        )
        .context("starting the service")?;
        // `careledger user|token|access-log` reach the service through this socket.
        let socket = server::admin::socket_path(store.path());
        let ops = server::admin::ServiceOps {
            writer: state.0.writer.clone(),
            erase: erase_in_service(vault.clone()),
        };
        let admin = server::admin::listen(&socket, store.clone(), ops).map_err(|e| {
            crate::CliError::Environment(format!(
                "opening the admin socket {}: {e}",
                socket.display()
            ))
        })?;
        eprintln!(
            "careledger: serving {} ({}) on http://{} (Ctrl-C or SIGTERM stops it)",
            store.path().display(),
            if encrypted {
                "encryption on: personal fields sealed under the key directory's keys"
            } else {
                "in clear: no master key"
            },
            listener.local_addr().unwrap_or(listen)
        );
        let served = server::serve(listener, state, task, server::shutdown_signal()).await;
        admin.abort();
        let _ = std::fs::remove_file(&socket);
        served.context("serving")?;
        anyhow::Ok(())
    });
    drop(runtime);
    match Arc::try_unwrap(store) {
        Ok(store) => store.close(),
        Err(_) => eprintln!("careledger: the store is still referenced; sled flushes it on exit"),
    }
    eprintln!("careledger: stopped; every acknowledged event is durable");
    result
}

/// `careledger erase` as the running service runs it for its admin socket (on its writer,
/// between two batches): the same checks, event and key destruction, answered as the command
/// would print them.
fn erase_in_service(vault: Option<Arc<Vault>>) -> server::admin::EraseFn {
    Arc::new(move |store, e| {
        let erased =
            super::erase::erase(store, vault.as_deref(), &e.child, &e.basis, &e.approved_by)
                .and_then(|()| super::erase::recorded_erasure(store, &e.child));
        match erased {
            Ok(Some((seq, commitment))) => AdminResponse::ok(
                String::new(),
                format!(
                    "the erasure of child {} is recorded at seq {seq} and its data key is \
                     destroyed (commitment {commitment}); its personal fields read as erased \
                     from now on, in every view and export",
                    e.child
                ),
            ),
            Ok(None) => AdminResponse::failure(
                format!("child {}: no erasure event after the erasure", e.child),
                false,
            ),
            Err(err) => {
                let err = crate::CliError::classify(err, store.path());
                AdminResponse::failure(err.to_string(), err.code() == 1)
            }
        }
    })
}

/// `serve --demo`: a temporary store with the seed school, one account per role. The store is
/// made as `init` makes one (encryption on: a key directory beside it with the master key and
/// the signing key), and the seed school is imported sealed.
pub fn demo(listen: SocketAddr) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("careledger-serve-demo-")
        .tempdir()
        .context("making a temporary directory")?;
    let dir = tmp.path().join("store");
    super::keys::init(&dir, None, Some("careledger-serve-demo"))?;
    let store = Store::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    super::keys::for_append(&store, &dir, None)?;
    let vault = super::sealing::load(&dir, None)?;
    let seed = tmp.path().join("seed-school.jsonl");
    std::fs::write(&seed, fixtures::SEED_SCHOOL_JSONL)?;
    let opts = super::log::ImportOpts {
        preserve_recorded_at: true,
        dry_run: false,
        quiet: true,
        actor: None,
        vault: vault.as_ref(),
    };
    super::log::import_files_as(&store, &[seed], &opts)?;
    let book = Book::new(&store);
    let county = "沿河土家族自治县";
    let accounts = [
        (
            "teacher",
            Role::Teacher,
            Some("sq-t03"),
            Scope::School("sq".into()),
        ),
        (
            "counselor",
            Role::Counselor,
            Some("sq-t06"),
            Scope::School("sq".into()),
        ),
        (
            "admin",
            Role::SchoolAdmin,
            Some("sq-t01"),
            Scope::School("sq".into()),
        ),
        (
            "inspector",
            Role::Inspector,
            None,
            Scope::County(county.into()),
        ),
        ("bureau", Role::Bureau, None, Scope::County(county.into())),
    ];
    println!("careledger serve --demo: the seed school 思渠中学 (sq), one account per role:");
    println!("  {:<10} {:<13} {:<7} password", "user", "role", "staff");
    for (user, role, staff, scope) in accounts {
        let password = server::accounts::random_secret()[..12].to_owned();
        book.add(NewAccount {
            user: user.into(),
            role,
            staff: staff.map(str::to_owned),
            scope,
            password: password.clone(),
        })
        .with_context(|| format!("adding the demo account {user}"))?;
        println!(
            "  {:<10} {:<13} {:<7} {password}",
            user,
            role.as_str(),
            staff.unwrap_or("-")
        );
    }
    println!("the store is temporary: it is removed when the service stops");
    let out = serve(store, vault, listen);
    drop(tmp);
    out
}
