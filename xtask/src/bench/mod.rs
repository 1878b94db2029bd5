//! `cargo xtask bench`: figures printed beside references measured in the same run.

pub fn main(_args: &[String]) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not yet")
}
