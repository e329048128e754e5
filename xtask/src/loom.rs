//! `cargo xtask loom`: runs every loom model (`crates/*/tests/loom_*.rs`) under
//! `--cfg floe_loom`, in release, in a target directory of its own so the cfg change does
//! not invalidate the normal build.

use anyhow::Context;

use crate::util::{cargo, project_root, run as run_command};

/// Finds and runs the loom models.
pub(crate) fn run() -> anyhow::Result<()> {
    let root = project_root();
    let mut models = Vec::new();
    for krate in std::fs::read_dir(root.join("crates")).context("listing crates/")? {
        let krate = krate?.path();
        let Ok(tests) = std::fs::read_dir(krate.join("tests")) else {
            continue;
        };
        let package = krate
            .file_name()
            .expect("crate directories have names")
            .to_string_lossy()
            .into_owned();
        for test in tests {
            let name = test?.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name
                .strip_prefix("loom_")
                .and_then(|s| s.strip_suffix(".rs"))
            {
                models.push((package.clone(), format!("loom_{stem}")));
            }
        }
    }
    models.sort();
    anyhow::ensure!(
        !models.is_empty(),
        "no loom models found under crates/*/tests/loom_*.rs"
    );
    for (package, test) in models {
        let mut command = cargo();
        command
            .args(["test", "--release", "--package", &package, "--test", &test])
            .env("RUSTFLAGS", "--cfg floe_loom --cfg crossbeam_loom")
            .env("CARGO_TARGET_DIR", root.join("target").join("loom"))
            .env("LOOM_LOG", "error");
        run_command(&mut command)?;
    }
    Ok(())
}
