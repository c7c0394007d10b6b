//! `fmtool grade --report`'s page in a real headless browser (Debian's chromium): it renders
//! (a screenshot with the histogram's bars in it), and the numbers in the DOM the browser built
//! are the JSON report's, recomputed here from the JSON's rows, not taken from fmtool's code.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The browser: $FMTOOL_CHROMIUM, else chromium on PATH. `cargo xtask test` installs Debian's
/// chromium when it is missing.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("FMTOOL_CHROMIUM") {
        return p.into();
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join(name))
            .find(|p| p.is_file());
        if let Some(p) = found {
            return p;
        }
    }
    panic!("no chromium to render the HTML report: run `apt-get install chromium`, or `cargo xtask test`, which does");
}

fn browse(page: &Path, extra: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The attributes of every start tag whose text begins with `start` (`<g class="bin"`), in
/// document order.
fn tags(dom: &str, start: &str) -> Vec<BTreeMap<String, String>> {
    dom.match_indices(start)
        .map(|(i, _)| {
            let tag = &dom[i..i + dom[i..].find('>').unwrap()];
            let mut attrs = BTreeMap::new();
            let mut rest = tag;
            while let Some(eq) = rest.find("=\"") {
                let name = rest[..eq].rsplit(' ').next().unwrap().to_string();
                let value_end = rest[eq + 2..].find('"').unwrap();
                attrs.insert(name, unescape(&rest[eq + 2..eq + 2 + value_end]));
                rest = &rest[eq + 2 + value_end + 1..];
            }
            attrs
        })
        .collect()
}

/// An attribute's value as the serialised DOM escapes it.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

fn num(a: &BTreeMap<String, String>, k: &str) -> u64 {
    a[k].parse().unwrap_or_else(|_| panic!("{k}={:?}", a[k]))
}

pub fn check_grade_page(page: &Path, report: &Value) {
    let dom = String::from_utf8(browse(page, &["--dump-dom"]).stdout).unwrap();
    assert!(dom.contains("<h1>Class report</h1>"), "{dom}");
    let rows = report["repos"].as_array().unwrap();
    let points: Vec<u64> = rows.iter().filter_map(|r| r["points"].as_u64()).collect();

    // The summary.
    let value = |id: &str| tags(&dom, &format!("<span id=\"{id}\""))[0]["data-value"].clone();
    assert_eq!(value("repos"), rows.len().to_string());
    assert_eq!(value("ungraded"), (rows.len() - points.len()).to_string());
    let mean = points.iter().sum::<u64>() as f64 / points.len() as f64;
    assert_eq!(value("mean"), format!("{mean:.2}"));
    let self_reported = rows.iter().filter(|r| r["source"] == "self-reported").count();
    assert_eq!(value("self-reported"), self_reported.to_string());

    // The histogram: every graded repository in the bin its points fall in.
    let bins = tags(&dom, "<g class=\"bin\"");
    assert!(bins.len() >= 2, "{bins:?}");
    assert_eq!(bins.iter().map(|b| num(b, "data-count")).sum::<u64>(), points.len() as u64);
    for b in &bins {
        let (low, high) = (num(b, "data-low"), num(b, "data-high"));
        let want = points.iter().filter(|&&p| p >= low && p <= high).count() as u64;
        assert_eq!(num(b, "data-count"), want, "bin {low}..={high}");
    }

    // Each step's pass rate.
    let steps = tags(&dom, "<tr class=\"step\"");
    let names: Vec<&str> = report["step_names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(steps.iter().map(|s| s["data-step"].as_str()).collect::<Vec<_>>(), names);
    for s in &steps {
        let cells: Vec<&Value> = rows
            .iter()
            .filter_map(|r| r["steps"].as_array().unwrap().iter().find(|c| c["name"] == s["data-step"].as_str()))
            .collect();
        assert_eq!(num(s, "data-ran"), cells.len() as u64, "{s:?}");
        assert_eq!(num(s, "data-passed"), cells.iter().filter(|c| c["passed"] == true).count() as u64, "{s:?}");
    }

    // The common findings: how many repositories each code's advice reaches.
    for f in tags(&dom, "<tr class=\"finding\"") {
        let code = &f["data-code"];
        let reached = rows
            .iter()
            .filter(|r| r["advice"].as_array().unwrap().iter().any(|a| a["code"].as_str() == Some(code)))
            .count();
        assert_eq!(num(&f, "data-repos"), reached as u64, "{code}");
    }

    // The course-wide findings: each once, with how many repositories it affects.
    let course = report["course_wide"].as_array().unwrap();
    let shown = tags(&dom, "<tr class=\"course-wide\"");
    assert_eq!(shown.len(), course.len());
    for (t, c) in shown.iter().zip(course) {
        assert_eq!(
            (t["data-code"].as_str(), t["data-place"].as_str()),
            (c["code"].as_str().unwrap(), c["place"].as_str().unwrap())
        );
        assert_eq!(num(t, "data-repos"), c["repos"].as_array().unwrap().len() as u64);
    }

    // One section per student, with its points and every piece of advice it was given.
    let sections = tags(&dom, "<section class=\"student\"");
    assert_eq!(sections.len(), rows.len());
    for (s, r) in sections.iter().zip(rows) {
        assert_eq!(s["data-repo"], r["repo"].as_str().unwrap());
        assert_eq!(s["data-source"], r["source"].as_str().unwrap());
        assert_eq!(s["data-points"], r["points"].as_u64().map(|p| p.to_string()).unwrap_or_default());
    }
    let advice: usize = rows.iter().map(|r| r["advice"].as_array().unwrap().len()).sum();
    assert!(advice > 0);
    // Each piece of advice, and each departure from the course's rules, is one item.
    let departures: usize = rows.iter().map(|r| r["integrity"].as_array().unwrap().len()).sum();
    assert_eq!(dom.matches("<li class=\"").count(), advice + departures);
    assert_eq!(dom.matches("data-effect=\"").count(), departures);

    // It renders: a screenshot with the histogram's and the pass-rate bars' blue in it.
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("page.png");
    browse(page, &[&format!("--screenshot={}", shot.display()), "--window-size=1200,1600"]);
    let img = image::open(&shot).expect("chromium wrote a PNG").to_rgb8();
    let blue = img.pixels().filter(|p| p.0 == [0x3b, 0x7d, 0xd8]).count();
    assert!(blue > 2000, "{blue} pixels of the bars' blue: the page did not render its histogram");
}
