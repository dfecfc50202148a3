#[spindle::main]
fn run<T: Default>() -> T {
    T::default()
}

fn main() {}
