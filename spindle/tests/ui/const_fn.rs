#[spindle::main]
const fn main() {}
