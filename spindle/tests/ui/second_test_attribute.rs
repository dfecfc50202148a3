#[spindle::test]
#[test]
fn twice() {}

fn main() {}
