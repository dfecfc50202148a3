#[spindle::test(workers = "4")]
fn four_workers() {}

fn main() {}
