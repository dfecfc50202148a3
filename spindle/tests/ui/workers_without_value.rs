#[spindle::main(workers)]
fn main() {}
