//! `--svg` draws a well-formed SVG timeline with its series and fault markers.

mod common;

use common::{cli, scenario_path};
use ferry_sim::SimOptions;

#[test]
fn svg_is_valid_and_names_its_series() {
    let path = std::env::temp_dir().join(format!("ferry-sim-svg-{}.svg", std::process::id()));
    let options = SimOptions {
        scenario: Some(scenario_path("crash.toml")),
        svg: Some(path.clone()),
        ..SimOptions::default()
    };
    let (code, out, err) = cli(&options);
    assert_eq!(code, 0, "{out}{err}");
    let svg = std::fs::read_to_string(&path).expect("the SVG was written");
    let document = roxmltree::Document::parse(&svg).expect("well-formed XML");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let texts: Vec<String> = document
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    for series in [
        "processes",
        "busy sessions (mean)",
        "queue length (right axis)",
    ] {
        assert!(
            texts.iter().any(|t| t == series),
            "no {series:?} in {texts:?}"
        );
    }
    assert!(
        texts.iter().any(|t| t == "fault: kill process 2"),
        "{texts:?}"
    );
    assert!(document.descendants().any(|n| n.has_tag_name("polyline")));
}
