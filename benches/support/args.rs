//! What every bench tool is given on its command line, without the
//! `--bench` that `cargo bench` adds when it runs one.

pub fn args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect()
}
