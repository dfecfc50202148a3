//! A three-stage pipeline of coroutines connected by channels:
//!
//! ```text
//! numbers ──► [ 8 checkers ] ──► primes ──► collector
//!   (bounded(64))   (WaitGroup: when all are done, close `primes`)
//! ```
//!
//! The checkers share a `Semaphore` that lets at most 3 of them run the
//! "expensive" part at once (standing in for a rate-limited resource), and
//! the collector reports progress with a `tick` channel in a `select!`.
//!
//! Run it with `cargo run --release --example pipeline`.

use std::sync::Arc;
use std::time::Duration;

use spindle::channel::{self, bounded};
use spindle::sync::{Semaphore, WaitGroup};

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

#[spindle::main]
fn main() {
    const LIMIT: u64 = 200_000;
    const CHECKERS: usize = 8;

    let (numbers_tx, numbers_rx) = bounded::<u64>(64);
    let (primes_tx, primes_rx) = bounded::<u64>(64);
    let slots = Arc::new(Semaphore::new(3));
    let checkers = Arc::new(WaitGroup::new());

    // Stage 1: produce the numbers, then close the channel by dropping
    // the only sender.
    spindle::spawn(move || {
        for n in 0..LIMIT {
            numbers_tx
                .send(n)
                .expect("the checkers outlive the producer");
        }
    });

    // Stage 2: checkers take numbers until the channel is closed and
    // drained; each receives different numbers (MPMC).
    for _ in 0..CHECKERS {
        checkers.add(1);
        let (numbers_rx, primes_tx) = (numbers_rx.clone(), primes_tx.clone());
        let (slots, checkers) = (slots.clone(), checkers.clone());
        spindle::spawn(move || {
            for n in numbers_rx.iter() {
                let prime = {
                    let _slot = slots.acquire(); // parks while 3 others hold one
                    is_prime(n)
                };
                if prime {
                    primes_tx
                        .send(n)
                        .expect("the collector outlives the checkers");
                }
            }
            checkers.done();
        });
    }
    drop((numbers_rx, primes_tx));

    // When every checker is done, nothing more will be sent: the last
    // clone of `primes_tx` was dropped with them, so the collector's loop
    // below ends by itself. The WaitGroup lets us say so, too.
    let all_checked = {
        let checkers = checkers.clone();
        spindle::spawn(move || checkers.wait())
    };

    // Stage 3: collect, reporting progress every 50 ms.
    let progress = channel::tick(Duration::from_millis(50));
    let (mut count, mut largest) = (0u64, 0u64);
    loop {
        spindle::select! {
            recv(primes_rx) -> p => match p {
                Ok(p) => {
                    count += 1;
                    largest = largest.max(p);
                }
                Err(_) => break, // every checker is gone and the channel is empty
            },
            recv(progress) -> _ => eprintln!("... {count} primes so far"),
        }
    }
    all_checked.join().unwrap();
    println!("{count} primes below {LIMIT}; the largest is {largest}");
    assert_eq!(count, 17_984);
}
