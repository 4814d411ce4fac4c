//! The physical floor under careledger on this machine, measured on the exact bytes it
//! stores: a full scan of the imported log, rmp-serde encode and decode of every envelope,
//! SHA-256 of every body chained as the store chains it, and raw sled inserts and a scan of
//! the same bodies, one key per event (through `store::floor`, since only `store` touches
//! sled).
//!
//! It owns the `floor` stage; it must never open sled itself.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use events::{Envelope, Hash};
use store::{Store, StoreError};

use crate::StageOut;
use crate::data::DataArgs;
use crate::import::store_path;

/// Reads the log a batch at a time and times each step on the whole batch (the clock is
/// read per batch, not per event); yields each batch's bodies for the raw sled floor.
struct Bodies<I> {
    scan: I,
    batch: usize,
    prev: Hash,
    events: u64,
    bytes: u64,
    read: Duration,
    encode: Duration,
    decode: Duration,
    hash: Duration,
    /// The first failure; the iteration stops there and the stage reports it.
    error: Option<anyhow::Error>,
}

impl<I: Iterator<Item = Result<Envelope, StoreError>>> Bodies<I> {
    fn next_batch(&mut self) -> Result<Option<Vec<Vec<u8>>>> {
        let t = Instant::now();
        let envs: Vec<Envelope> = self
            .scan
            .by_ref()
            .take(self.batch)
            .collect::<Result<_, _>>()?;
        self.read += t.elapsed();
        if envs.is_empty() {
            return Ok(None);
        }
        let t = Instant::now();
        let bodies: Vec<Vec<u8>> = envs.iter().map(Envelope::encode_body).collect();
        self.encode += t.elapsed();
        let t = Instant::now();
        let mut hashes = Vec::with_capacity(bodies.len());
        for body in &bodies {
            self.prev = Envelope::chain_hash(&self.prev, body);
            hashes.push(self.prev);
        }
        self.hash += t.elapsed();
        // The re-encoded bodies are the stored ones: their chain is the stored chain.
        ensure!(
            envs.iter().zip(&hashes).all(|(e, h)| e.hash == *h),
            "re-encoding the batch from seq {} does not give the stored bytes",
            envs[0].seq
        );
        let t = Instant::now();
        for (body, h) in bodies.iter().zip(&hashes) {
            black_box(Envelope::decode_body(body, *h)?);
        }
        self.decode += t.elapsed();
        self.events += envs.len() as u64;
        self.bytes += bodies.iter().map(|b| b.len() as u64).sum::<u64>();
        Ok(Some(bodies))
    }
}

impl<I: Iterator<Item = Result<Envelope, StoreError>>> Iterator for Bodies<I> {
    type Item = Vec<Vec<u8>>;

    fn next(&mut self) -> Option<Vec<Vec<u8>>> {
        if self.error.is_some() {
            return None;
        }
        match self.next_batch() {
            Ok(batch) => batch,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

/// Stage `floor`: reads the log the `import` stage wrote and feeds its bodies, in the
/// import's batch size, to `store::floor::sled_floor` in a fresh directory.
pub fn floor(data: &DataArgs, dir: &Path) -> Result<StageOut> {
    let store = Store::open(&store_path(dir))?;
    let head = store.head();
    // The scan alone first: below, the caller's own work overlaps the scan's decoding thread,
    // so the time it waits for batches says little about what a walk of the log costs.
    let t = Instant::now();
    let mut scanned = 0u64;
    for env in store.scan(None) {
        black_box(env?);
        scanned += 1;
    }
    let scan_s = t.elapsed().as_secs_f64();
    ensure!(
        scanned == head.seq,
        "the scan read {scanned} events, the head is at {}",
        head.seq
    );
    let mut bodies = Bodies {
        scan: store.scan(None),
        batch: data.batch(),
        prev: Hash::ZERO,
        events: 0,
        bytes: 0,
        read: Duration::ZERO,
        encode: Duration::ZERO,
        decode: Duration::ZERO,
        hash: Duration::ZERO,
        error: None,
    };
    let sled = store::floor::sled_floor(&dir.join("sled-floor"), &mut bodies)?;
    if let Some(e) = bodies.error.take() {
        return Err(e);
    }
    ensure!(
        bodies.events == head.seq && bodies.prev == head.hash,
        "the scan ended at {} events, the head is at {}",
        bodies.events,
        head.seq
    );
    let mut out = StageOut::default();
    out.set("events", bodies.events as f64);
    out.set("body_bytes", bodies.bytes as f64);
    out.set("scan_s", scan_s);
    out.set("scan_fed_s", bodies.read.as_secs_f64());
    out.set("encode_s", bodies.encode.as_secs_f64());
    out.set("decode_s", bodies.decode.as_secs_f64());
    out.set("sha256_s", bodies.hash.as_secs_f64());
    out.set("sled_values", sled.values as f64);
    out.set("sled_insert_s", sled.insert.as_secs_f64());
    out.set("sled_scan_s", sled.scan.as_secs_f64());
    out.set("sled_disk_bytes", sled.disk_bytes as f64);
    Ok(out)
}
