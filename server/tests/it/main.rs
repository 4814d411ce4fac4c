//! Tests of the service: a real listener on 127.0.0.1:0 over a temporary store holding the
//! seed school (in clear, or with encryption on: sealed under a key directory beside it, as
//! `init` makes a store), one account (and one bearer token) per role, spoken to over HTTP.

mod browser;
mod concurrency;
mod matrix;
mod pages;
mod sealed;
mod security;

use std::collections::BTreeMap;
use std::sync::Arc;

use careledger::service_plan::ServicePlan;
use chrono::Utc;
use events::Source;
use server::accounts::{Book, NewAccount};
use server::policy::{Role, Scope, TokenScope};
use server::{AppState, Limits};
use store::Store;
use vault::Vault;

pub(crate) const COUNTY: &str = "沿河土家族自治县";
pub(crate) const PASSWORD: &str = "correct horse battery";

/// The test accounts: user, role, staff, scope.
pub(crate) fn accounts() -> Vec<(&'static str, Role, Option<&'static str>, Scope)> {
    let school = || Scope::School("sq".into());
    let county = || Scope::County(COUNTY.into());
    vec![
        ("teacher", Role::Teacher, Some("sq-t03"), school()),
        ("counselor", Role::Counselor, Some("sq-t06"), school()),
        ("admin", Role::SchoolAdmin, Some("sq-t01"), school()),
        ("inspector", Role::Inspector, None, county()),
        ("bureau", Role::Bureau, None, county()),
        ("victim", Role::Teacher, Some("sq-t02"), school()),
    ]
}

/// A running service over a temporary seed-school store.
pub(crate) struct Service {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) store: Arc<Store>,
    /// The read plan the service was started with (its kept worklist versions).
    pub(crate) plan: Arc<ServicePlan>,
    pub(crate) base: String,
    /// Bearer token per user.
    pub(crate) tokens: BTreeMap<String, String>,
    /// Values the probes refer to (`{victim_token}`).
    pub(crate) vars: BTreeMap<String, String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub(crate) client: reqwest::Client,
}

/// Whether the test store has encryption on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keys {
    /// No master key: nothing sealed.
    Clear,
    /// A key directory beside the store (`store.keys`): personal fields sealed.
    Sealed,
}

/// A store holding the seed school (sealed under a new key directory for `Keys::Sealed`,
/// as `import` seals it), with the test accounts.
pub(crate) fn seed_store(dir: &std::path::Path, keys: Keys) -> (Store, Option<Arc<Vault>>) {
    let store = Store::create(&dir.join("store")).unwrap();
    let vault = match keys {
        Keys::Clear => None,
        Keys::Sealed => Some(Arc::new(Vault::create(&dir.join("store.keys")).unwrap())),
    };
    let known = ingest::StoreKnown::new(&store);
    let opts = ingest::Options {
        now: Utc::now(),
        preserve_recorded_at: true,
        head_recorded_at: None,
    };
    let parsed = ingest::parse_bytes(
        "seed.jsonl",
        fixtures::SEED_SCHOOL_JSONL.as_bytes(),
        &known,
        &opts,
    )
    .unwrap();
    drop(known);
    let mut drafts = parsed.into_drafts();
    if let Some(v) = &vault {
        careledger::sealing::seal_batch(&store, v, &mut drafts).unwrap();
    }
    store.append(drafts, Source::Migration).unwrap();
    let book = Book::new(&store);
    for (user, role, staff, scope) in accounts() {
        book.add(NewAccount {
            user: user.into(),
            role,
            staff: staff.map(str::to_owned),
            scope,
            password: PASSWORD.into(),
        })
        .unwrap();
    }
    (store, vault)
}

impl Service {
    pub(crate) async fn start() -> Service {
        Service::start_with(Limits::default()).await
    }

    pub(crate) async fn start_with(limits: Limits) -> Service {
        Service::start_on(limits, Keys::Clear).await
    }

    /// A service over the seed school with encryption on.
    pub(crate) async fn start_sealed() -> Service {
        Service::start_on(Limits::default(), Keys::Sealed).await
    }

    pub(crate) async fn start_on(limits: Limits, keys: Keys) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let (store, vault) = seed_store(dir.path(), keys);
        let store = Arc::new(store);
        let book = Book::new(&store);
        let mut tokens = BTreeMap::new();
        let expires = Utc::now() + chrono::Duration::days(1);
        for (user, ..) in accounts() {
            let (t, _) = book
                .create_token(user, TokenScope::All, expires, "test")
                .unwrap();
            tokens.insert(user.to_owned(), t);
        }
        let (_, victim) = book
            .create_token("victim", TokenScope::Read, expires, "to revoke")
            .unwrap();
        let mut vars = BTreeMap::new();
        vars.insert("victim_token".to_owned(), victim.id);
        let plan = Arc::new(ServicePlan::new(vault));
        let (state, task) = AppState::start(store.clone(), plan.clone(), limits).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let join = tokio::spawn(server::serve(listener, state, task, async {
            let _ = stopped.await;
        }));
        Service {
            _dir: dir,
            store,
            plan,
            base,
            tokens,
            vars,
            stop: Some(stop),
            join: Some(join),
            // Redirects are answers to check, not to follow.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// Stops the service and waits until its queue is committed.
    pub(crate) async fn stop(self) {
        drop(self.stop_keeping_files().await);
    }

    /// Stops the service; its temporary directory (the store, the keys) is kept until the
    /// returned handle is dropped, for a test to read its files.
    pub(crate) async fn stop_keeping_files(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(j) = self.join.take() {
            j.await.unwrap().unwrap();
        }
        drop(self.store);
        self._dir
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub(crate) fn token(&self, user: &str) -> &str {
        &self.tokens[user]
    }

    /// A request with `user`'s bearer token (or none for `None`).
    pub(crate) async fn call(
        &self,
        user: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, self.url(path));
        if let Some(u) = user {
            req = req.bearer_auth(self.token(u));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// Logs `user` in with the test password; returns the session cookie (`cl_session=…`).
    pub(crate) async fn login(&self, user: &str) -> String {
        let resp = self
            .client
            .post(self.url("/api/login"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"user":"{user}","password":"{PASSWORD}"}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let set = resp
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        set.split(';').next().unwrap().to_owned()
    }

    /// The store's directory (its key directory is beside it, `store.keys`).
    pub(crate) fn store_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("store")
    }

    pub(crate) fn head(&self) -> u64 {
        self.store.head().seq
    }
}

/// A talk by `staff` with `child` on 2025-11-20 whose content (and so id) is unique by `tag`.
pub(crate) fn talk(staff: &str, child: &str, tag: &str) -> String {
    format!(
        r#"{{"staff":"{staff}","child":"{child}","occurred_at":"2025-11-20T16:00:00+08:00","topic":"学习","summary":"{tag}","mood":"ok"}}"#
    )
}
