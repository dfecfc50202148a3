#[spindle::test]
async fn sleeps() {}

fn main() {}
