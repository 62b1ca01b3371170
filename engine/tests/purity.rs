//! The engine must not read a clock, touch the OS, start a thread or draw a random number:
//! that is what makes it deterministic and lets the simulator run it on a virtual clock.
//! `no_std` makes all of those impossible without `std`, so these tests fail the moment someone
//! brings `std` (or a dependency that could) into the engine.

use std::fs;
use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn the_engine_is_no_std_and_forbids_unsafe_code() {
    let lib = fs::read_to_string(crate_dir().join("src/lib.rs")).unwrap();
    let attributes: Vec<&str> = lib.lines().map(str::trim).collect();
    assert!(attributes.contains(&"#![no_std]"), "lib.rs lost #![no_std]");
    assert!(
        attributes.contains(&"#![forbid(unsafe_code)]"),
        "lib.rs lost #![forbid(unsafe_code)]"
    );
}

#[test]
fn no_engine_source_mentions_std() {
    let mut files = Vec::new();
    sources(&crate_dir().join("src"), &mut files);
    assert!(files.len() > 5, "engine sources not found: {files:?}");
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (index, line) in text.lines().enumerate() {
            // Comments cannot bring std in; doc examples run as crates of their own, with std
            // (the run loop's example plays the OS with it).
            if line.trim_start().starts_with("//") {
                continue;
            }
            let place = format!("{}:{}: {line}", file.display(), index + 1);
            assert!(!line.contains("std::"), "{place}");
            assert!(!line.contains("extern crate std"), "{place}");
        }
    }
}

#[test]
fn the_engine_depends_on_serde_alone_without_its_std_feature() {
    let manifest = fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap();
    let mut section = String::new();
    let mut dependencies = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
            let dependency_table = section.contains("dependencies");
            assert!(
                !dependency_table || section == "[dependencies]" || section == "[dev-dependencies]",
                "the engine may not have {section}"
            );
            continue;
        }
        if section == "[dependencies]" && !line.is_empty() && !line.starts_with('#') {
            dependencies.push(line.to_string());
        }
    }
    assert_eq!(dependencies.len(), 1, "{dependencies:?}");
    assert!(dependencies[0].starts_with("serde "), "{dependencies:?}");
    assert!(
        dependencies[0].contains("default-features = false"),
        "serde's std feature must stay off: {dependencies:?}"
    );
    assert!(!crate_dir().join("build.rs").exists(), "no build script");
}
