//! Unit tests of the stack pool: sizes, reuse, accounting, maps, and
//! running a corosensei coroutine on a pooled stack.
//!
//! Each test that asserts exact counts uses a size class of its own (an odd
//! size no other test uses), because tests run in parallel and share the
//! process-wide classes.

use std::sync::Barrier;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::pool::CREDITS_MAX_FOR_TESTS;
use super::*;

/// The statistics of the class of `size` (normalized), if it exists yet.
fn class_stats(size: usize) -> Option<ClassStats> {
    let size = normalize_size(size);
    stats().into_iter().find(|c| c.size == size)
}

/// Reserves and takes one stack of `size` through `pool`.
fn take(pool: &mut LocalPool, size: usize) -> Stack {
    let r = reserve(size).expect("reserve");
    pool.take(r).expect("take")
}

/// Writes to every page of a stack's usable range and reads it back.
fn touch(s: &Stack, tag: u8) {
    let page = sys::page_size();
    let base = corosensei::stack::Stack::base(s).get();
    let bottom = base - s.usable_size();
    for addr in (bottom..base).step_by(page) {
        // SAFETY: `addr` is inside the usable range this test owns.
        unsafe { std::ptr::write_volatile(addr as *mut u8, tag) };
    }
    for addr in (bottom..base).step_by(page) {
        // SAFETY: as above.
        assert_eq!(unsafe { std::ptr::read_volatile(addr as *const u8) }, tag);
    }
}

#[test]
fn parses_sizes() {
    assert_eq!(parse_size("262144"), Some(262144));
    assert_eq!(parse_size(" 256K "), Some(256 << 10));
    assert_eq!(parse_size("256KiB"), Some(256 << 10));
    assert_eq!(parse_size("256 kib"), Some(256 << 10));
    assert_eq!(parse_size("1M"), Some(1 << 20));
    assert_eq!(parse_size("2MiB"), Some(2 << 20));
    assert_eq!(parse_size("1g"), Some(1 << 30));
    for bad in [
        "",
        "0",
        "-5",
        "1.5M",
        "12Q",
        "K",
        "99999999999999999999",
        "1 M B",
    ] {
        assert_eq!(parse_size(bad), None, "{bad:?}");
    }
}

#[test]
fn normalizes_sizes() {
    let page = sys::page_size();
    assert_eq!(normalize_size(0), MIN_STACK_SIZE.next_multiple_of(page));
    assert_eq!(normalize_size(1), normalize_size(0));
    assert_eq!(normalize_size(100_000), 100_000usize.next_multiple_of(page));
    assert_eq!(normalize_size(1 << 20), 1 << 20);
    assert_eq!(normalize_size(usize::MAX) % page, 0);
    assert!(reserve(usize::MAX).is_err());
    let d = default_stack_size();
    assert!(d >= MIN_STACK_SIZE && d % page == 0);
}

#[test]
fn types_are_send() {
    fn send<T: Send>() {}
    send::<Stack>();
    send::<Reservation>();
    send::<LocalPool>();
}

#[test]
fn round_trip_reuses_the_same_stack_lifo() {
    let mut pool = LocalPool::new();
    let a = take(&mut pool, default_stack_size());
    assert_eq!(a.usable_size(), default_stack_size());
    let a_base = corosensei::stack::Stack::base(&a);
    pool.give(a);
    let a = take(&mut pool, default_stack_size());
    assert_eq!(
        corosensei::stack::Stack::base(&a),
        a_base,
        "the cache is LIFO"
    );

    let b = take(&mut pool, default_stack_size());
    let b_base = corosensei::stack::Stack::base(&b);
    assert_ne!(a_base, b_base);
    pool.give(a);
    pool.give(b);
    let first = take(&mut pool, default_stack_size());
    let second = take(&mut pool, default_stack_size());
    assert_eq!(corosensei::stack::Stack::base(&first), b_base);
    assert_eq!(corosensei::stack::Stack::base(&second), a_base);
}

/// A claim made from one worker's credits can be taken on another worker:
/// it starts on that worker's hot cached stack, and the claim becomes a
/// credit there. Nothing is lost or counted twice.
#[test]
fn credit_claims_move_between_workers() {
    let size = 68 << 10; // a class of its own
    let mut a = LocalPool::with_size(size).unwrap();
    let mut b = LocalPool::with_size(size).unwrap();
    let s = take(&mut b, size);
    let base = corosensei::stack::Stack::base(&s);
    b.give(s);
    let r = a.reserve_claim(size).unwrap();
    assert_eq!(r.size(), normalize_size(size));
    let credits_b = b.credits;
    let s = b.take(r).unwrap();
    assert_eq!(corosensei::stack::Stack::base(&s), base, "b's hot stack");
    assert_eq!(b.credits, credits_b + 1, "the claim became b's credit");
    b.give(s);
    let st = class_stats(size).unwrap();
    assert_eq!(
        st.available + a.credits + b.credits + a.cached() + b.cached(),
        st.slots
    );
    drop((a, b));
    let st = class_stats(size).unwrap();
    assert_eq!(st.available, st.slots);
}

#[test]
fn non_default_size_works() {
    let mut pool = LocalPool::new();
    let s = take(&mut pool, 100_000);
    assert_eq!(s.usable_size(), normalize_size(100_000));
    let base = corosensei::stack::Stack::base(&s).get();
    let limit = corosensei::stack::Stack::limit(&s).get();
    let (g0, g1) = s.guard_range();
    assert_eq!((g0, g1), (limit, base - s.usable_size()));
    assert_eq!(g1 - g0, sys::page_size());
    assert_eq!(base % 16, 0);
    touch(&s, 7);
    let base = corosensei::stack::Stack::base(&s);
    pool.give(s); // another size: straight to the global list
    assert_eq!(pool.cached(), 0);
    assert!(class_stats(100_000).unwrap().free >= 1);
    let again = take(&mut pool, 100_000);
    assert_eq!(corosensei::stack::Stack::base(&again), base);
}

#[test]
fn reservations_are_accounted() {
    let size = 44 << 10;
    assert!(class_stats(size).is_none(), "size reserved for this test");
    let held: Vec<_> = (0..600).map(|_| reserve(size).unwrap()).collect();
    let st = class_stats(size).unwrap();
    assert!(st.regions >= 1 && st.slots >= 600, "{st:?}");
    assert_eq!(st.available, st.slots - 600);
    drop(held);
    let st2 = class_stats(size).unwrap();
    assert_eq!(st2.available, st2.slots, "dropping reservations frees them");
    // The capacity is there again: no new region for as many reservations.
    let held: Vec<_> = (0..st2.slots).map(|_| reserve(size).unwrap()).collect();
    assert_eq!(class_stats(size).unwrap().regions, st2.regions);
    assert_eq!(class_stats(size).unwrap().available, 0);
    drop(held);
}

#[test]
fn local_pool_spills_and_returns_everything() {
    let size = 52 << 10;
    let mut pool = LocalPool::with_size(size).unwrap();
    assert_eq!(pool.cached_size(), normalize_size(size));
    let stacks: Vec<_> = (0..200).map(|_| take(&mut pool, size)).collect();
    let slots = class_stats(size).unwrap().slots;
    for s in stacks {
        pool.give(s);
    }
    let st = class_stats(size).unwrap();
    assert!(pool.cached() <= 128);
    assert_eq!(pool.cached() + st.free, 200);
    assert_eq!(st.available, slots - pool.cached());
    // Taking them again maps nothing and refills the cache in batches.
    let stacks: Vec<_> = (0..200).map(|_| take(&mut pool, size)).collect();
    assert_eq!(class_stats(size).unwrap().slots, slots);
    drop(stacks); // `Stack::drop` returns them to the global list
    drop(pool);
    let st = class_stats(size).unwrap();
    assert_eq!((st.free, st.available), (200, slots));
}

#[test]
fn concurrent_use_never_shares_a_stack() {
    let size = 36 << 10;
    let threads = 4;
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                let mut pool = LocalPool::with_size(size).unwrap();
                barrier.wait();
                for round in 0..50 {
                    let held: Vec<_> = (0..8).map(|_| take(&mut pool, size)).collect();
                    let tag = (t * 50 + round) as u8;
                    for s in &held {
                        touch(s, tag);
                    }
                    for s in held {
                        pool.give(s);
                    }
                }
            });
        }
    });
    let st = class_stats(size).unwrap();
    assert_eq!(st.available, st.slots, "all pools dropped: all free");
    assert!(st.free <= st.slots);
}

#[test]
fn coroutine_runs_on_a_pooled_stack() {
    let mut pool = LocalPool::new();
    let stack = take(&mut pool, default_stack_size());
    let base = corosensei::stack::Stack::base(&stack);
    let mut co = Coroutine::with_stack(stack, |y: &Yielder<u32, u32>, first: u32| {
        let deep = [first as u8; 4096]; // lives on the pooled stack
        let second = y.suspend(first + 1);
        std::hint::black_box(&deep);
        first + second
    });
    assert!(matches!(co.resume(1), CoroutineResult::Yield(2)));
    assert!(matches!(co.resume(10), CoroutineResult::Return(11)));
    let stack = co.into_stack();
    assert_eq!(corosensei::stack::Stack::base(&stack), base);
    pool.give(stack);
    assert_eq!(
        corosensei::stack::Stack::base(&take(&mut pool, default_stack_size())),
        base
    );
}

#[test]
fn panic_fits_in_the_minimum_stack() {
    let mut pool = LocalPool::new();
    let stack = take(&mut pool, MIN_STACK_SIZE);
    let mut co = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
        std::panic::catch_unwind(|| panic!("boom on a small stack")).is_err()
    });
    assert!(matches!(co.resume(()), CoroutineResult::Return(true)));
    pool.give(co.into_stack());
}

#[test]
fn dropping_an_unfinished_coroutine_returns_its_stack() {
    let size = 60 << 10;
    let mut pool = LocalPool::new();
    let stack = take(&mut pool, size);
    let mut co = Coroutine::with_stack(stack, |y: &Yielder<(), ()>, ()| y.suspend(()));
    assert!(matches!(co.resume(()), CoroutineResult::Yield(())));
    drop(co); // unwinds the coroutine, then drops the stack
    let st = class_stats(size).unwrap();
    assert_eq!((st.free, st.available), (1, st.slots));
}

/// A worker's claim credits keep the accounting exact: claims handed out
/// from credits, stacks taken hot from the cache (their claims kept as
/// credits), and everything given back when the pool goes.
#[test]
fn claim_credits_are_accounted() {
    let size = 176 << 10; // a class of its own
    let mut pool = LocalPool::with_size(size).expect("pool");
    let slots0 = {
        // Make the class exist and note its capacity.
        drop(reserve(size).expect("reserve"));
        class_stats(size).unwrap().slots
    };
    // 300 spawns' worth of claims, run one after another on one worker:
    // after the first, every start finds a cached stack.
    for _ in 0..300 {
        let r = pool.reserve_claim(size).expect("reserve_claim");
        let s = pool.take(r).expect("take");
        pool.give(s);
    }
    let st = class_stats(size).unwrap();
    // Every slot is either available, cached, or held as a credit, and the
    // credits stay bounded.
    assert!(pool.credits <= CREDITS_MAX_FOR_TESTS, "{}", pool.credits);
    assert_eq!(st.available + pool.cached() + pool.credits, st.slots);
    drop(pool);
    let st = class_stats(size).unwrap();
    assert_eq!(st.slots, slots0.max(st.slots));
    assert_eq!(
        st.available, st.slots,
        "dropping the pool returns every claim and stack"
    );
}

#[test]
fn guards_are_installed_for_the_slots_used() {
    // What a burst of spawns does: many claims at once, whose coroutines
    // then run one after another on a recycled stack.
    let size = 72 << 10;
    assert!(class_stats(size).is_none(), "size reserved for this test");
    let mut pool = LocalPool::with_size(size).unwrap();
    let claims: Vec<_> = (0..1_000).map(|_| reserve(size).unwrap()).collect();
    for (i, r) in claims.into_iter().enumerate() {
        let s = pool.take(r).unwrap();
        touch(&s, i as u8);
        pool.give(s);
    }
    let st = class_stats(size).unwrap();
    assert!(st.slots >= 1_000, "{st:?}");
    match sys::guard_mode() {
        // One guard per region (the probe) and one per slot carved.
        Some(sys::GuardMode::Madvise) => assert!(st.guarded <= st.regions + 1, "{st:?}"),
        // Each guard costs kernel maps: all installed at mapping, so that
        // running out shows at `reserve`.
        _ => assert_eq!(st.guarded, st.slots, "{st:?}"),
    }
}
