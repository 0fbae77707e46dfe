// SPDX-License-Identifier: BSD-2-Clause
//! 8 threads churning Vec, String, HashMap and BTreeMap; values sent over
//! channels and dropped on the receiving thread; contents checked.
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::thread;

use liballoc::LibAlloc;

#[global_allocator]
static GLOBAL: LibAlloc = LibAlloc;

const THREADS: usize = 8;
const ROUNDS: usize = 400;

/// What one thread builds and sends to the next.
struct Parcel {
    from: usize,
    round: usize,
    words: Vec<String>,
    counts: HashMap<String, usize>,
    index: BTreeMap<usize, Vec<u32>>,
}

fn make(from: usize, round: usize) -> Parcel {
    let n = 1 + (from * 7 + round * 13) % 60;
    let words: Vec<String> = (0..n).map(|i| format!("w{}-{}-{}", from, round, i % 17)).collect();
    let mut counts = HashMap::new();
    for w in &words {
        *counts.entry(w.clone()).or_insert(0) += 1;
    }
    let mut index = BTreeMap::new();
    for i in 0..n {
        // Vecs of varied lengths, small to a few pages.
        let len = (i * 97 + round) % 3000;
        index.insert(i, (0..len as u32).map(|x| x ^ (from as u32)).collect());
    }
    Parcel { from, round, words, counts, index }
}

fn verify(p: &Parcel) {
    let n = 1 + (p.from * 7 + p.round * 13) % 60;
    assert_eq!(p.words.len(), n);
    for (i, w) in p.words.iter().enumerate() {
        assert_eq!(*w, format!("w{}-{}-{}", p.from, p.round, i % 17));
    }
    assert_eq!(p.counts.values().sum::<usize>(), n);
    for (w, c) in &p.counts {
        assert_eq!(p.words.iter().filter(|x| *x == w).count(), *c);
    }
    assert_eq!(p.index.len(), n);
    for (i, v) in &p.index {
        assert_eq!(v.len(), (i * 97 + p.round) % 3000);
        assert!(v.iter().enumerate().all(|(x, &y)| y == (x as u32) ^ (p.from as u32)));
    }
}

#[test]
fn eight_threads_send_collections_and_drop_them_elsewhere() {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel::<Parcel>()).unzip();
    let mut receivers: Vec<Option<mpsc::Receiver<Parcel>>> = receivers.into_iter().map(Some).collect();
    let mut handles = Vec::new();
    for t in 0..THREADS {
        let to_next = senders[(t + 1) % THREADS].clone();
        let inbox = receivers[t].take().unwrap();
        handles.push(thread::spawn(move || {
            let mut received = 0;
            let mut kept: Vec<Parcel> = Vec::new();
            for round in 0..ROUNDS {
                to_next.send(make(t, round)).unwrap();
                // Take what arrived; keep a few for a while so frees
                // interleave with other threads' allocations.
                while let Ok(p) = inbox.try_recv() {
                    assert_eq!(p.from, (t + THREADS - 1) % THREADS);
                    verify(&p);
                    received += 1;
                    kept.push(p);
                    if kept.len() > 8 {
                        kept.remove(0);
                    }
                }
            }
            drop(to_next);
            (inbox, received, kept.len())
        }));
    }
    drop(senders);
    let mut total = 0;
    for h in handles {
        let (inbox, received, _) = h.join().unwrap();
        // What was left in flight, dropped here on the main thread.
        let rest: Vec<Parcel> = inbox.iter().collect();
        for p in &rest {
            verify(p);
        }
        total += received + rest.len();
    }
    assert_eq!(total, THREADS * ROUNDS);
}
