//! `cargo xtask codegen [--check]`: proto/ → crates/crossrole-proto/src/generated (see crossrole_proto::codegen).

use anyhow::{Result, bail};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let root = crate::workspace_root();
    match args {
        [] => {
            let written = crossrole_proto::codegen::write(&root)?;
            if written.is_empty() {
                println!("codegen: up to date");
            }
            for path in written {
                println!("codegen: wrote {}", path.display());
            }
            Ok(())
        }
        [flag] if flag == "--check" => {
            crossrole_proto::codegen::check(&root)?;
            println!("codegen: generated code matches proto/");
            Ok(())
        }
        _ => bail!("usage: cargo xtask codegen [--check]"),
    }
}
