//! Spawns a thousand coroutines that sleep and return, and sums them.
use std::time::{Duration, Instant};

fn main() {
    let rt = spindle::Runtime::builder().build().expect("runtime");
    let t = Instant::now();
    let sum: u64 = rt.block_on(|| {
        let hs: Vec<_> = (0..1000u64)
            .map(|i| {
                spindle::spawn(move || {
                    spindle::sleep(Duration::from_millis(10));
                    i
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    println!("sum = {sum} in {:?}", t.elapsed());
}
