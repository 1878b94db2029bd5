//! Suite `transport` (being written).

use super::{Report, Scale};

pub fn run(_report: &mut Report, _scale: Scale) -> anyhow::Result<()> {
    Ok(())
}
