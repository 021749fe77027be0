//! The chart library is an npm package pinned in `web/package-lock.json`, embedded into the
//! binary (nothing is fetched at run time): install it when it is not there yet.
use std::path::Path;
use std::process::Command;

const CHART: &str = "web/node_modules/uplot/dist/uPlot.iife.min.js";

fn main() {
    println!("cargo:rerun-if-changed=web/package-lock.json");
    println!("cargo:rerun-if-changed={CHART}");
    if Path::new(CHART).exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix", "web"])
        .status();
    match status {
        Ok(s) if s.success() && Path::new(CHART).exists() => {}
        Ok(s) => panic!("`npm ci --prefix crates/dashboard/web` failed ({s}); the dashboard embeds uPlot from it"),
        Err(e) => panic!("npm is needed to install the dashboard's chart library (crates/dashboard/web): {e}"),
    }
}
