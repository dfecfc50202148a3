#[spindle::main]
async fn main() {}
