// SPDX-License-Identifier: BSD-2-Clause
//! rust: a service-shaped Rust program. A producer thread makes batches of
//! access-log lines (`String`s); parser threads split them into records of
//! owned `String`s, aggregate each batch into a `HashMap` (per user) and a
//! `BTreeMap` (per path, latencies in growing `Vec`s) and send both to a
//! reducer, and the records to a sink; the reducer merges into its own maps
//! and every few batches reports percentiles and starts a new window; the
//! sink checks and drops the records. So most values are allocated on one
//! thread and dropped on another.
//!
//! Options as the C workloads (bench/common.h): `--tiny`, `--quick`,
//! `--scale F`, `--threads N` (parsers, default 4), `--seed S`. Prints
//! `OK rust ...` when the totals the reducer and the sink saw match what the
//! producer made, else `FAIL rust: ...` and exits 1.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

const BATCH_LINES: usize = 1000;
/// Lines at scale 1 (`--full`).
const FULL_LINES: f64 = 600_000.0;
/// Batches per reporting window of the reducer.
const WINDOW_BATCHES: usize = 20;

struct Options {
    scale: f64,
    threads: usize,
    seed: u64,
}

fn parse_args(name: &str) -> Result<Options, String> {
    let mut o = Options { scale: 1.0, threads: 4, seed: 1 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = |i: usize| args.get(i + 1).ok_or_else(|| format!("{} needs a value", args[i]));
        match args[i].as_str() {
            "--full" => o.scale = 1.0,
            "--quick" => o.scale = 0.2,
            "--tiny" => o.scale = 0.01,
            "--scale" => {
                o.scale = value(i)?.parse().map_err(|_| "--scale: not a number".to_string())?;
                i += 1;
            }
            "--threads" => {
                o.threads = value(i)?.parse().map_err(|_| "--threads: not a number".to_string())?;
                i += 1;
            }
            "--seed" => {
                o.seed = value(i)?.parse().map_err(|_| "--seed: not a number".to_string())?;
                i += 1;
            }
            "-h" | "--help" => {
                println!(
                    "usage: {} [--tiny | --quick | --scale F] [--threads N] [--seed S]\n  \
                     a service-shaped Rust workload (see bench/README.md)",
                    name
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {}", other)),
        }
        i += 1;
    }
    if !(o.scale > 0.0) || o.threads == 0 {
        return Err("--scale must be > 0 and --threads >= 1".into());
    }
    Ok(o)
}

/// xorshift64*: deterministic input without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const AGENTS: [&str; 5] = ["curl/8.1", "Mozilla/5.0 (X11; Linux x86_64)", "okhttp/4.9", "python-requests/2.31", "Go-http-client/2.0"];
const RESOURCES: [&str; 6] = ["items", "users", "orders", "search", "cart", "images"];

/// One batch of lines, and what it holds (for the checks).
struct Batch {
    lines: Vec<String>,
}

#[derive(Default)]
struct Totals {
    lines: u64,
    bytes: u64,
    ms: u64,
}

fn make_batch(rng: &mut Rng, n: usize, ts: &mut u64, totals: &mut Totals) -> Batch {
    let mut lines = Vec::new();
    for _ in 0..n {
        *ts += 1 + rng.below(3);
        let user = rng.below(5000);
        let version = 1 + rng.below(3);
        let res = RESOURCES[rng.below(RESOURCES.len() as u64) as usize];
        let id = rng.below(200);
        let status = [200, 200, 200, 201, 304, 404, 500][rng.below(7) as usize];
        let lg = 4 + rng.below(14);
        let bytes = rng.below(1 << lg);
        let spread = 1 + rng.below(400);
        let ms = 1 + rng.below(spread);
        let agent = AGENTS[rng.below(AGENTS.len() as u64) as usize];
        let mut line = String::new();
        let _ = write!(
            line,
            "ts={} user=u{} path=/api/v{}/{}/{} status={} bytes={} ms={} agent=\"{}\"",
            ts, user, version, res, id, status, bytes, ms, agent
        );
        totals.lines += 1;
        totals.bytes += bytes;
        totals.ms += ms;
        lines.push(line);
    }
    Batch { lines }
}

/// A parsed line: owned strings, as a service would keep them.
struct Record {
    user: String,
    path: String,
    status: u16,
    bytes: u64,
    ms: u32,
    agent: String,
}

fn parse_line(line: &str) -> Option<Record> {
    let (head, agent) = line.split_once(" agent=")?;
    let mut fields: HashMap<&str, &str> = HashMap::with_capacity(8);
    for kv in head.split(' ') {
        let (k, v) = kv.split_once('=')?;
        fields.insert(k, v);
    }
    Some(Record {
        user: fields.get("user")?.to_string(),
        path: fields.get("path")?.to_string(),
        status: fields.get("status")?.parse().ok()?,
        bytes: fields.get("bytes")?.parse().ok()?,
        ms: fields.get("ms")?.parse().ok()?,
        agent: agent.trim_matches('"').to_string(),
    })
}

#[derive(Default)]
struct UserAgg {
    requests: u64,
    bytes: u64,
    errors: u64,
    recent_paths: Vec<String>,
}

/// What a parser sends the reducer for one batch.
struct Partial {
    users: HashMap<String, UserAgg>,
    paths: BTreeMap<String, Vec<u32>>,
}

fn aggregate(records: &[Record]) -> Partial {
    let mut users: HashMap<String, UserAgg> = HashMap::new();
    let mut paths: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for r in records {
        let u = users.entry(r.user.clone()).or_default();
        u.requests += 1;
        u.bytes += r.bytes;
        u.errors += (r.status >= 500) as u64;
        if u.recent_paths.len() < 4 {
            u.recent_paths.push(r.path.clone());
        }
        paths.entry(r.path.clone()).or_default().push(r.ms);
    }
    Partial { users, paths }
}

/// The reducer's state: one window of merged maps, and the running checks.
#[derive(Default)]
struct Window {
    users: HashMap<String, UserAgg>,
    paths: BTreeMap<String, Vec<u32>>,
    batches: usize,
    requests: u64,
    bytes: u64,
    ms: u64,
    reports: u64,
    report_len: usize,
}

impl Window {
    fn merge(&mut self, p: Partial) {
        for (k, v) in p.users {
            self.requests += v.requests;
            self.bytes += v.bytes;
            let u = self.users.entry(k).or_default();
            u.requests += v.requests;
            u.bytes += v.bytes;
            u.errors += v.errors;
            for path in v.recent_paths {
                if u.recent_paths.len() < 8 {
                    u.recent_paths.push(path);
                }
            }
        }
        for (k, v) in p.paths {
            self.ms += v.iter().map(|&x| x as u64).sum::<u64>();
            self.paths.entry(k).or_default().extend(v);
        }
        self.batches += 1;
        if self.batches % WINDOW_BATCHES == 0 {
            self.report();
        }
    }

    /// The periodic report: percentiles per path, top users; then a new
    /// window (everything of the old one dropped).
    fn report(&mut self) {
        let mut out = String::new();
        for (path, lat) in &self.paths {
            let mut sorted = lat.clone();
            sorted.sort_unstable();
            let p = |q: usize| sorted[(sorted.len() - 1) * q / 100];
            let _ = writeln!(out, "{} n={} p50={} p99={}", path, sorted.len(), p(50), p(99));
        }
        let mut top: Vec<(&String, &UserAgg)> = self.users.iter().collect();
        top.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(b.0)));
        for (user, agg) in top.iter().take(10) {
            let _ = writeln!(out, "{} {} {} {} {:?}", user, agg.requests, agg.bytes, agg.errors, agg.recent_paths);
        }
        self.report_len += out.len();
        self.reports += 1;
        self.users = HashMap::new();
        self.paths = BTreeMap::new();
    }
}

fn fail(msg: &str) -> i32 {
    eprintln!("FAIL rust: {}", msg);
    1
}

/// Runs the workload; returns the exit status. `label` names the build.
pub fn main(label: &str) -> i32 {
    let opts = match parse_args("rust") {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let lines = ((FULL_LINES * opts.scale) as usize).max(BATCH_LINES);
    let nbatches = (lines + BATCH_LINES - 1) / BATCH_LINES;

    let (batch_tx, batch_rx) = mpsc::sync_channel::<Batch>(opts.threads * 2);
    let batch_rx = Arc::new(Mutex::new(batch_rx));
    let (partial_tx, partial_rx) = mpsc::sync_channel::<Partial>(opts.threads * 2);
    let (record_tx, record_rx) = mpsc::sync_channel::<Vec<Record>>(opts.threads * 2);

    let seed = opts.seed;
    let producer = thread::spawn(move || {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x1000_0000_01b3));
        let mut totals = Totals::default();
        let mut ts = 1_700_000_000_000u64;
        for b in 0..nbatches {
            let n = if b + 1 == nbatches { lines - b * BATCH_LINES } else { BATCH_LINES };
            if batch_tx.send(make_batch(&mut rng, n, &mut ts, &mut totals)).is_err() {
                break;
            }
        }
        totals
    });

    let mut parsers = Vec::new();
    for _ in 0..opts.threads {
        let rx = Arc::clone(&batch_rx);
        let ptx = partial_tx.clone();
        let rtx = record_tx.clone();
        parsers.push(thread::spawn(move || -> Result<(), String> {
            loop {
                let batch = match rx.lock().unwrap().recv() {
                    Ok(b) => b,
                    Err(_) => return Ok(()),
                };
                let mut records = Vec::new();
                for line in &batch.lines {
                    records.push(parse_line(line).ok_or_else(|| format!("cannot parse {:?}", line))?);
                }
                // The lines were allocated by the producer: freed here.
                drop(batch);
                ptx.send(aggregate(&records)).map_err(|e| e.to_string())?;
                rtx.send(records).map_err(|e| e.to_string())?;
            }
        }));
    }
    drop(partial_tx);
    drop(record_tx);

    let reducer = thread::spawn(move || {
        let mut w = Window::default();
        for p in partial_rx {
            w.merge(p);
        }
        w.report();
        w
    });
    let sink = thread::spawn(move || {
        let mut t = Totals::default();
        for records in record_rx {
            for r in &records {
                if !r.user.starts_with('u') || !r.path.starts_with("/api/v") || r.agent.is_empty() {
                    return Err(format!("bad record for user {:?}", r.user));
                }
                t.lines += 1;
                t.bytes += r.bytes;
                t.ms += r.ms as u64;
            }
        }
        Ok(t)
    });

    let made = producer.join().expect("producer panicked");
    for p in parsers {
        if let Err(e) = p.join().expect("parser panicked") {
            return fail(&e);
        }
    }
    let w = reducer.join().expect("reducer panicked");
    let seen = match sink.join().expect("sink panicked") {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    if made.lines != lines as u64 || seen.lines != made.lines || w.requests != made.lines {
        return fail(&format!("lines: made {}, sink {}, reducer {}", made.lines, seen.lines, w.requests));
    }
    if seen.bytes != made.bytes || w.bytes != made.bytes || seen.ms != made.ms || w.ms != made.ms {
        return fail("byte or latency totals differ between producer, sink and reducer");
    }
    if w.reports as usize != nbatches / WINDOW_BATCHES + 1 || w.report_len == 0 {
        return fail(&format!("{} reports for {} batches", w.reports, nbatches));
    }
    println!(
        "OK rust {}: {} lines in {} batches, {} parsers, {} reports, {} bytes",
        label, made.lines, nbatches, opts.threads, w.reports, made.bytes
    );
    0
}
