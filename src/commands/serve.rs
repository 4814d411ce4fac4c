//! `serve` and `serve --demo`: the service of docs/service.md on a tokio multi-thread runtime,
//! with the commands' own read plan (`careledger::service_plan`) handed to it.
//!
//! This module owns starting and stopping the service and the demo's accounts; it must never
//! handle a request itself (that is the `server` crate).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use careledger::service_plan::ServicePlan;
use server::accounts::{Book, NewAccount};
use server::policy::{Role, Scope};
use store::Store;

/// Serves `store` on `listen` until Ctrl-C or SIGTERM, then closes it.
pub fn serve(store: Store, listen: SocketAddr) -> Result<()> {
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
            Arc::new(ServicePlan),
            server::Limits::default(),
        )
        .context("starting the service")?;
        // `careledger user|token|access-log` reach the service through this socket.
        let socket = server::admin::socket_path(store.path());
        let admin = server::admin::listen(&socket, store.clone()).map_err(|e| {
            crate::CliError::Environment(format!(
                "opening the admin socket {}: {e}",
                socket.display()
            ))
        })?;
        eprintln!(
            "careledger: serving {} on http://{} (Ctrl-C or SIGTERM stops it)",
            store.path().display(),
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

/// `serve --demo`: a temporary store with the seed school, one account per role.
pub fn demo(listen: SocketAddr) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("careledger-serve-demo-")
        .tempdir()
        .context("making a temporary directory")?;
    let dir = tmp.path().join("store");
    let store = Store::create(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let seed = tmp.path().join("seed-school.jsonl");
    std::fs::write(&seed, fixtures::SEED_SCHOOL_JSONL)?;
    super::import_files(&store, &[seed], true, false, true)?;
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
    let out = serve(store, listen);
    drop(tmp);
    out
}
