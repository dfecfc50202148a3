//! `#[spindle::main]` and `#[spindle::test]`: real uses here, misuse and its
//! compile errors in `tests/ui/` (run with `TRYBUILD=overwrite` to regenerate
//! the expected `.stderr` files after changing a message).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Every misuse of the attributes is a compile error pointing at the
/// offending token.
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

#[spindle::test]
fn works() {
    let sum: u64 = (1..=10).sum();
    assert_eq!(sum, 55);
}

#[spindle::test(workers = 2)]
fn works_with_two_workers() {
    assert_eq!(2 + 2, 4);
}

#[spindle::test]
fn returns_ok() -> Result<(), String> {
    let n: u32 = "42".parse().map_err(|e| format!("not a number: {e}"))?;
    assert_eq!(n, 42);
    Ok(())
}

#[spindle::test]
fn early_return_leaves_the_body_only() -> Result<(), String> {
    for i in 0.. {
        if i == 3 {
            return Ok(());
        }
    }
    Err("unreachable".to_owned())
}

/// Doc comments and other attributes stay on the generated test.
#[spindle::test]
#[should_panic(expected = "boom from a coroutine")]
fn panic_is_reraised_on_the_test_thread() {
    panic!("boom from a coroutine");
}

#[spindle::test]
fn body_value_is_returned() {
    fn inner() -> u32 {
        7
    }
    assert_eq!(inner(), 7);
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// `#[spindle::main]` is allowed on a function not named `main`: it builds a
/// runtime, runs the body on it and returns the body's value.
#[spindle::main(workers = 1)]
fn run_on_a_fresh_runtime() -> usize {
    RUNS.fetch_add(1, Ordering::SeqCst) + 1
}

#[test]
fn main_attribute_on_another_function() {
    let first = run_on_a_fresh_runtime();
    let second = run_on_a_fresh_runtime();
    assert_eq!(second, first + 1);
}
