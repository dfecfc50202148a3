use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
fn main() {
    let w: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(1);
    let rt = spindle::Runtime::builder().workers(w).build().unwrap();
    let only = std::env::args().nth(2).unwrap_or_default();
    for _ in 0..(if only.is_empty() || only == "y" { 3 } else { 0 }) {
        let n = 1_000_000u64;
        let t = rt.block_on(move || {
            let t = Instant::now();
            let a = spindle::spawn(move || for _ in 0..n { spindle::yield_now() });
            let b = spindle::spawn(move || for _ in 0..n { spindle::yield_now() });
            a.join().unwrap(); b.join().unwrap();
            t.elapsed()
        });
        println!("yield: {:.1} ns/switch", t.as_nanos() as f64 / (2 * n) as f64);
    }
    for _ in 0..(if only.is_empty() || only == "sj" { 5 } else { 0 }) {
        let n = 100_000u64;
        let t = rt.block_on(move || {
            let c = Arc::new(AtomicU64::new(0));
            let t = Instant::now();
            let hs: Vec<_> = (0..n).map(|_| { let c = c.clone(); spindle::spawn(move || { c.fetch_add(1, Ordering::Relaxed); }) }).collect();
            for h in hs { h.join().unwrap(); }
            assert_eq!(c.load(Ordering::Relaxed), n);
            t.elapsed()
        });
        println!("spawn_join: {:.1} ns/op", t.as_nanos() as f64 / n as f64);
    }
    for _ in 0..(if only.is_empty() || only == "sk" { 3 } else { 0 }) {
        let t = Instant::now();
        fn sky(num: u64, size: u64) -> u64 {
            if size == 1 { return num; }
            let hs: Vec<_> = (0..10).map(|i| { let s = size / 10; spindle::spawn(move || sky(num + i * s, s)) }).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        }
        let s = rt.block_on(|| sky(0, 1_000_000));
        assert_eq!(s, 499999500000);
        println!("skynet: {:?}", t.elapsed());
    }
}
