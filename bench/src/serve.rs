//! `careledger-bench serve`: the service (docs/service.md) measured as its users meet it. The
//! generated year is imported into a store made as `init` makes one (encryption on: sealed
//! under a key directory beside it, unless `--clear`), the service is started in this process
//! over it (the binary's own read plan and vault, a real listener on 127.0.0.1), and 1, 16 and
//! 64 clients — each with its own connection, as separate programs — record single talks over
//! HTTP with teacher bearer tokens, each answered once durable (group commit). The same
//! workload runs against SQLite in the same run: the same year imported, then the same number
//! of clients (threads, each with its own connection) inserting one talk per transaction
//! (WAL, `synchronous=FULL`), chained like careledger's log. Then the worklist page
//! (`GET /worklist`) of the teachers, one request at a time.
//!
//! It owns that workload and its table; it must never be run by tests for timing, and it must
//! never touch the store but through `store`, the service and the read plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::{NaiveDate, TimeZone, Utc};
use clap::Args;
use events::event::Mood;
use events::{Draft, Envelope, Event, Hash, SCHEMA, Source};
use fixtures::Generated;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rusqlite::{Connection, params};
use server::accounts::{Book, NewAccount};
use server::policy::{Role, Scope, TokenScope};
use store::Store;

use crate::data::DataArgs;
use crate::machine::{Machine, machine};
use crate::table::{int, write_docs};

/// What `careledger-bench serve` runs.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) data: DataArgs,
    /// Concurrent clients of each run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    pub(crate) clients: Vec<usize>,
    /// Requests of each run, shared among its clients (2,000 at small scale, 20,000 at
    /// county scale by default).
    #[arg(long)]
    pub(crate) requests: Option<usize>,
    /// Worklist pages requested, one at a time.
    #[arg(long, default_value_t = 200)]
    pub(crate) pages: usize,
    /// Serve a store in clear (no key directory) instead of one with encryption on.
    #[arg(long)]
    pub(crate) clear: bool,
    /// Also write the table into this markdown file, between the markers of its data set and
    /// build profile.
    #[arg(long)]
    pub(crate) docs: Option<PathBuf>,
}

impl ServeArgs {
    fn requests(&self) -> usize {
        let default = match self.data.scale {
            crate::data::Scale::Small => 2_000,
            crate::data::Scale::County => 20_000,
        };
        self.requests.unwrap_or(default).max(1)
    }
}

/// One teacher of the workload: its token, and the (child, day) pairs it may record a talk
/// for (paired with the child on that day).
struct Teacher {
    staff: String,
    token: String,
    work: Vec<(String, NaiveDate)>,
}

/// Latencies of one run and its wall time.
struct Run {
    clients: usize,
    requests: usize,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The `q` quantile (nearest rank) in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        quantile_ms(&self.latencies, q)
    }
}

fn quantile_ms(latencies: &[Duration], q: f64) -> f64 {
    if latencies.is_empty() {
        return f64::NAN;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

/// `careledger-bench serve`.
pub(crate) fn serve(args: &ServeArgs) -> Result<()> {
    let machine = machine();
    let tmp;
    let dir = match &args.data.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir().context("creating a temporary work directory")?;
            tmp.path().to_owned()
        }
    };
    let cfg = args.data.config();
    eprintln!(
        "bench serve: {} schools × {} children, seed {}, in {} ({})",
        cfg.schools,
        cfg.children_per_school,
        cfg.seed,
        dir.display(),
        if args.clear {
            "in clear"
        } else {
            "encryption on"
        }
    );
    let (store, vault, events) = import(&args.data, &dir, !args.clear)?;
    eprintln!("bench serve: imported {events} events; the SQLite baseline …");
    let sqlite = crate::sqlite::import(&args.data, &dir)?;
    // The same events on both sides (sealed bytes hash differently: the heads agree in clear).
    ensure!(
        sqlite.figures.get("events") == Some(&(events as f64))
            && (!args.clear || sqlite.notes.get("head_hash") == Some(&store.head().hash.to_hex())),
        "careledger and SQLite did not import the same events"
    );
    let plan = Arc::new(careledger::service_plan::ServicePlan::new(vault));
    let wanted = args.clients.iter().copied().max().unwrap_or(1);
    let teachers = teachers(&store, &*plan, &args.data.year, wanted)?;
    eprintln!(
        "bench serve: {} teacher accounts with bearer tokens; serving …",
        teachers.len()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let store = Arc::new(store);
    let (runs, pages) = runtime.block_on(service_runs(store.clone(), plan, &teachers, args))?;
    drop(runtime);
    let mut sqlite_runs = Vec::new();
    for (run, &clients) in args.clients.iter().enumerate() {
        eprintln!("bench serve: SQLite, {clients} clients …");
        sqlite_runs.push(sqlite_run(
            &crate::sqlite::db_path(&dir),
            &teachers,
            run,
            clients,
            args.requests(),
        )?);
    }
    let verified = store.verify().context("verifying the log after the runs")?;
    let text = render(
        &machine,
        args,
        (events, verified.events),
        &runs,
        &sqlite_runs,
        &pages,
    );
    print!("{text}");
    if let Some(path) = &args.docs {
        let label = format!("serve-{}", args.data.label());
        write_docs(path, &label, machine.profile, &text)?;
        eprintln!("bench serve: table written into {}", path.display());
    }
    Ok(())
}

/// The generated year into a fresh store, sealed under a new key directory beside it when
/// `encrypted` (as `init` and `import` make a store). Not timed.
fn import(
    data: &DataArgs,
    dir: &Path,
    encrypted: bool,
) -> Result<(Store, Option<Arc<vault::Vault>>, u64)> {
    let path = crate::import::store_path(dir);
    let store =
        Store::create(&path).with_context(|| format!("creating a store at {}", path.display()))?;
    let vault = if encrypted {
        let keys = dir.join("careledger.keys");
        Some(Arc::new(vault::Vault::create(&keys).with_context(
            || format!("creating the key directory {}", keys.display()),
        )?))
    } else {
        None
    };
    let mut events = 0u64;
    for batch in data.batches()? {
        let mut drafts: Vec<Draft> = batch.into_iter().map(Generated::into_draft).collect();
        if let Some(v) = &vault {
            careledger::sealing::seal_batch(&store, v, &mut drafts)
                .map_err(|r| anyhow::anyhow!("sealing the generated year: {r}"))?;
        }
        events += store.append(drafts, Source::Migration)?.appended;
    }
    Ok((store, vault, events))
}

/// Up to `wanted` teachers of the generated county, each with an account, a bearer token
/// (scope `record`) and the children it was paired with, on a day of the pairing.
fn teachers(
    store: &Store,
    plan: &dyn server::ReadPlan,
    year: &str,
    wanted: usize,
) -> Result<Vec<Teacher>> {
    // October 1 of the school year: the term is under way.
    let from = year
        .get(..4)
        .and_then(|y| y.parse::<i32>().ok())
        .and_then(|y| NaiveDate::from_ymd_opt(y, 10, 1))
        .with_context(|| format!("--year {year}: expected YYYY-YYYY"))?;
    let facts = server::Facts::read(store, plan).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut by_staff: BTreeMap<String, Vec<(String, NaiveDate)>> = BTreeMap::new();
    for ((staff, child), pairing) in &facts.pairings {
        let Some(first) = facts
            .registry
            .staff_school(staff)
            .and_then(|_| first_active_day(pairing, from))
        else {
            continue;
        };
        by_staff
            .entry(staff.clone())
            .or_default()
            .push((child.clone(), first));
    }
    ensure!(
        !by_staff.is_empty(),
        "the generated county has no pairing to record a talk for"
    );
    let book = Book::new(store);
    let expires = Utc::now() + chrono::Duration::days(1);
    let mut out = Vec::new();
    for (staff, mut work) in by_staff.into_iter().take(wanted) {
        work.sort();
        let school = facts
            .registry
            .staff_school(&staff)
            .context("a paired staff member has a school")?
            .to_owned();
        let user = format!("bench-{staff}");
        book.add(NewAccount {
            user: user.clone(),
            role: Role::Teacher,
            staff: Some(staff.clone()),
            scope: Scope::School(school),
            password: server::accounts::random_secret(),
        })
        .with_context(|| format!("adding the account {user}"))?;
        let (token, _) = book
            .create_token(&user, TokenScope::Record, expires, "bench")
            .with_context(|| format!("a token for {user}"))?;
        out.push(Teacher { staff, token, work });
    }
    Ok(out)
}

/// The first day from `from` (within a year of it) on which the pairing holds.
fn first_active_day(p: &projections::world::Pairing, from: NaiveDate) -> Option<NaiveDate> {
    from.iter_days().take(366).find(|d| p.active_on(*d))
}

/// A talk by `t` with one of its children on that child's day, unique by `tag`.
fn talk_body(t: &Teacher, i: usize, tag: &str) -> (String, NaiveDate) {
    let (child, day) = &t.work[i % t.work.len()];
    let body = format!(
        r#"{{"staff":"{}","child":"{child}","occurred_at":"{day}T16:00:00+08:00","topic":"学习","summary":"{tag}","mood":"ok"}}"#,
        t.staff
    );
    (body, *day)
}

/// The service over `store`, the runs of each client count, then the worklist pages.
async fn service_runs(
    store: Arc<Store>,
    plan: Arc<careledger::service_plan::ServicePlan>,
    teachers: &[Teacher],
    args: &ServeArgs,
) -> Result<(Vec<Run>, Pages)> {
    let (state, task) = server::AppState::start(store, plan, server::Limits::default())
        .map_err(|e| anyhow::anyhow!("starting the service: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server::serve(listener, state, task, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    // Each teacher's first page, before the write runs: a school's pages are answered by the
    // teacher's own read until the service's keeper has folded that school's versions (kept
    // from then on, and brought up to date after commits).
    eprintln!("bench serve: each teacher's first worklist page …");
    let mut first = Vec::with_capacity(teachers.len());
    for (i, t) in teachers.iter().enumerate() {
        first.push(worklist_page(&client, &base, t, i).await?);
    }
    let mut runs = Vec::new();
    for (run, &clients) in args.clients.iter().enumerate() {
        eprintln!("bench serve: careledger, {clients} clients …");
        runs.push(http_run(addr, teachers, run, clients, args.requests()).await?);
    }
    eprintln!("bench serve: {} worklist pages …", args.pages);
    let mut pages = Vec::with_capacity(args.pages);
    for i in 0..args.pages {
        let t = &teachers[i % teachers.len()];
        pages.push(worklist_page(&client, &base, t, i).await?);
    }
    let _ = stop.send(());
    served.await??;
    Ok((
        runs,
        Pages {
            first,
            after: pages,
        },
    ))
}

/// The worklist page latencies of a run.
struct Pages {
    /// Each teacher's first page, before the write runs.
    first: Vec<Duration>,
    /// The pages after the write runs, one at a time.
    after: Vec<Duration>,
}

/// One worklist page of `t` (on the day of its `i`-th child), timed; an error unless 200.
async fn worklist_page(
    client: &reqwest::Client,
    base: &str,
    t: &Teacher,
    i: usize,
) -> Result<Duration> {
    let (_, day) = talk_body(t, i, "");
    let at = Instant::now();
    let resp = client
        .get(format!("{base}/worklist?on={day}"))
        .bearer_auth(&t.token)
        .send()
        .await?;
    let status = resp.status();
    let body = resp.text().await?;
    let took = at.elapsed();
    ensure!(status.as_u16() == 200, "worklist page: {status}: {body}");
    Ok(took)
}

/// `clients` clients, each with its own connection, recording `requests` talks in all; the
/// `run`-th run of the benchmark (its talks differ from every other run's, so that a client
/// count given twice measures new talks, not repeats).
///
/// Each client is one HTTP/1.1 connection of hyper's (`hyper::client::conn::http1`), not a
/// `reqwest::Client`: the clients run in this process, on the two cores the service runs on,
/// and reqwest's pool and request building took about a sixth of the run's CPU (`perf` of a
/// 64-client run, docs/service.md) — load a real deployment's clients, on their own phones
/// and computers, put on no core of the server. What a client still does here is what any
/// HTTP client must: write the request, read and parse the answer.
async fn http_run(
    addr: std::net::SocketAddr,
    teachers: &[Teacher],
    run: usize,
    clients: usize,
    requests: usize,
) -> Result<Run> {
    let each = requests.div_ceil(clients);
    // Connections are opened before the clock starts, as SQLite's connections are.
    let mut made = Vec::with_capacity(clients);
    for _ in 0..clients {
        made.push(connect(addr).await?);
    }
    let host = hyper::header::HeaderValue::from_str(&addr.to_string())?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut conn) in made.into_iter().enumerate() {
        let t = &teachers[c % teachers.len()];
        let bodies: Vec<String> = (0..each)
            .map(|i| {
                talk_body(
                    t,
                    c + i,
                    &format!("bench run {run}: {clients} clients, client {c} talk {i}"),
                )
                .0
            })
            .collect();
        let bearer = hyper::header::HeaderValue::from_str(&format!("Bearer {}", t.token))?;
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(bodies.len());
            for body in bodies {
                let at = Instant::now();
                let req = hyper::Request::post("/api/record/talk_held")
                    .header(hyper::header::HOST, host.clone())
                    .header(hyper::header::AUTHORIZATION, bearer.clone())
                    .header(hyper::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(body)))?;
                conn.ready().await?;
                let resp = conn.send_request(req).await?;
                let status = resp.status();
                let text = resp.into_body().collect().await?.to_bytes();
                latencies.push(at.elapsed());
                if status.as_u16() != 201 {
                    bail!(
                        "recording a talk: {status}: {}",
                        String::from_utf8_lossy(&text)
                    );
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok(Run {
        clients,
        requests: latencies.len(),
        wall: start.elapsed(),
        latencies,
    })
}

/// One client's connection to the service: HTTP/1.1 over TCP without Nagle's delay (as
/// reqwest sets it), driven by a task of its own.
async fn connect(
    addr: std::net::SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(send)
}

/// The same workload against SQLite: `clients` threads, each with its own connection, one
/// transaction per talk (`BEGIN IMMEDIATE`, the previous hash read, the chained row inserted,
/// `COMMIT` fsynced by WAL with `synchronous=FULL`).
fn sqlite_run(
    db: &Path,
    teachers: &[Teacher],
    run: usize,
    clients: usize,
    requests: usize,
) -> Result<Run> {
    let each = requests.div_ceil(clients);
    // Connections are opened before the clock starts, as the service's clients are made.
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        let conn = Connection::open(db)?;
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.execute_batch("PRAGMA synchronous = FULL;")?;
        conns.push(conn);
    }
    let start = Instant::now();
    let latencies = std::thread::scope(|scope| -> Result<Vec<Duration>> {
        let mut handles = Vec::new();
        for (c, conn) in conns.into_iter().enumerate() {
            let t = &teachers[c % teachers.len()];
            handles.push(scope.spawn(move || -> Result<Vec<Duration>> {
                let mut latencies = Vec::with_capacity(each);
                for i in 0..each {
                    let (child, day) = &t.work[(c + i) % t.work.len()];
                    let tag = format!("bench run {run}: {clients} clients, client {c} talk {i}");
                    let at = Instant::now();
                    sqlite_talk(&conn, &t.staff, child, *day, &tag)?;
                    latencies.push(at.elapsed());
                }
                Ok(latencies)
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("a SQLite client panicked"))??,
            );
        }
        Ok(all)
    })?;
    Ok(Run {
        clients,
        requests: latencies.len(),
        wall: start.elapsed(),
        latencies,
    })
}

/// One talk in one SQLite transaction, encoded and chained as careledger stores it.
fn sqlite_talk(
    conn: &Connection,
    staff: &str,
    child: &str,
    day: NaiveDate,
    tag: &str,
) -> Result<()> {
    let occurred_at = Utc
        .from_local_datetime(&day.and_hms_opt(8, 0, 0).context("a valid time")?)
        .single()
        .context("a valid instant")?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let done = (|| -> Result<()> {
        let (seq, prev): (i64, Vec<u8>) = conn.query_row(
            "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let prev = Hash(
            prev.try_into()
                .map_err(|_| anyhow::anyhow!("a 32-byte hash"))?,
        );
        let env = Envelope {
            sealed: None,
            schema: SCHEMA,
            seq: seq as u64 + 1,
            id: format!("sqlite-{tag}"),
            recorded_at: Utc::now(),
            occurred_at,
            actor: staff.to_owned(),
            source: Source::Cli,
            event: Event::TalkHeld {
                staff: staff.to_owned(),
                child: child.to_owned(),
                topic: "学习".to_owned(),
                summary: tag.to_owned(),
                mood: Mood::Ok,
                follow_up: None,
            },
            prev_hash: prev,
            hash: Hash::ZERO,
        };
        let body = env.encode_body();
        let hash = Envelope::chain_hash(&prev, &body);
        conn.execute(
            "INSERT INTO events (seq, id, recorded_at, occurred_at, child, staff, body, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                env.seq as i64,
                env.id,
                env.recorded_at.timestamp_micros(),
                env.occurred_at.timestamp_micros(),
                child,
                staff,
                body,
                &hash.0[..],
            ],
        )?;
        Ok(())
    })();
    match done {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(())
}

/// The markdown table of a `serve` run.
/// `events`: imported, and verified after the runs; `pages`: the worklist latencies.
fn render(
    machine: &Machine,
    args: &ServeArgs,
    (imported, verified): (u64, u64),
    runs: &[Run],
    sqlite: &[Run],
    pages: &Pages,
) -> String {
    let cfg = args.data.config();
    let mut cmd = format!("`careledger-bench serve --scale {}", args.data.scale.name());
    if let Some(s) = args.data.schools {
        cmd += &format!(" --schools {s}");
    }
    if let Some(c) = args.data.children {
        cmd += &format!(" --children {c}");
    }
    if args.clear {
        cmd += " --clear";
    }
    cmd += "`";
    let mut text = format!("### {cmd}, {} build\n\n", machine.profile);
    text += &format!("Machine: {}.\n", machine.describe());
    text += &format!(
        "Data: `fixtures` generator, {} schools × {} children, seed {}, school year {}: {} events imported{} before the service starts; {} requests per run, shared by its clients; the log verified after the runs ({} events).\n\n",
        cfg.schools,
        cfg.children_per_school,
        cfg.seed,
        cfg.year,
        int(imported as f64),
        if args.clear {
            " in clear"
        } else {
            ", sealed under a key directory (encryption on, as `init` makes a store)"
        },
        int(args.requests() as f64),
        int(verified as f64),
    );
    text += "careledger: `careledger serve` in this process (the binary's read plan and vault), each client its own HTTP connection and teacher bearer token, `POST /api/record/talk_held`, answered once its group-commit batch is fsynced. SQLite: the same year imported, the same number of clients as threads with a connection each, one talk per transaction (`BEGIN IMMEDIATE`, previous hash read, chained row inserted, `COMMIT`; WAL, `synchronous=FULL`), called directly — no HTTP, no validation, the body in clear.\n\n";
    text += "| clients | careledger events/s | p50 | p99 | SQLite events/s | p50 | p99 | careledger ÷ SQLite |\n|---|---|---|---|---|---|---|---|\n";
    for (c, s) in runs.iter().zip(sqlite) {
        text += &format!(
            "| {} | {} | {:.1} ms | {:.1} ms | {} | {:.1} ms | {:.1} ms | {:.2}× |\n",
            c.clients,
            int(c.per_second()),
            c.quantile_ms(0.5),
            c.quantile_ms(0.99),
            int(s.per_second()),
            s.quantile_ms(0.5),
            s.quantile_ms(0.99),
            c.per_second() / s.per_second()
        );
    }
    text += &format!(
        "\nWorklist page (`GET /worklist?on=DAY`, a teacher's, HTML), one at a time. Each teacher's first, before the write runs ({} pages; a school's pages are answered by the teacher's own read until the service's keeper has folded the school's versions, kept from then on and brought up to date after commits): p50 {:.1} ms, max {:.1} ms. ",
        int(pages.first.len() as f64),
        quantile_ms(&pages.first, 0.5),
        quantile_ms(&pages.first, 1.0),
    );
    // `--pages 0` asks for none: said so, not printed as quantiles of nothing.
    text += &if pages.after.is_empty() {
        "After the write runs: none requested (`--pages 0`).\n".to_owned()
    } else {
        format!(
            "After the write runs, {} pages over the same {} teachers: p50 {:.1} ms, p99 {:.1} ms.\n",
            int(pages.after.len() as f64),
            int(pages.after.len().min(pages.first.len()) as f64),
            quantile_ms(&pages.after, 0.5),
            quantile_ms(&pages.after, 0.99)
        )
    };
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_latencies_when_taking_quantiles_then_nearest_rank() {
        let l: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&l, 0.5), 50.0);
        assert_eq!(quantile_ms(&l, 0.99), 99.0);
        assert_eq!(quantile_ms(&l[..1], 0.99), 1.0);
        assert!(quantile_ms(&[], 0.5).is_nan());
    }
}
