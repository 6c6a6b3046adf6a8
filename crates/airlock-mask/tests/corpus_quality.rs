//! Precision and recall of every built-in detector over the labelled corpus
//! `tests/corpus/labelled.tsv`: positives in free text and cells, and
//! look-alike negatives (invalid checksums, order ids, UUIDs, timestamps,
//! versions, hashes, prices, dates, ZIP codes). All built-in detectors run
//! on every line, as in production, so a detector firing on another
//! detector's line counts as a false positive.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use std::collections::BTreeMap;

use airlock_mask::{MaskPlan, MaskSpec, BUILTIN_DETECTORS};

const CORPUS: &str = include_str!("corpus/labelled.tsv");

/// Thresholds every detector must meet.
const MIN_PRECISION: f64 = 0.95;
const MIN_RECALL: f64 = 0.95;
/// A detector needs this many labelled positives for its numbers to mean anything.
const MIN_POSITIVES: usize = 20;

/// Decodes `\n`, `\t` and `\\` in a corpus field.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut characters = field.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            out.push(character);
            continue;
        }
        match characters.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[derive(Default, Debug)]
struct Counts {
    true_positives: usize,
    false_positives: usize,
    false_negatives: usize,
}

#[test]
fn precision_and_recall_per_detector() {
    let plan = MaskPlan::compile(&MaskSpec {
        detectors: BUILTIN_DETECTORS
            .iter()
            .map(|name| name.to_string())
            .collect(),
        ..MaskSpec::default()
    })
    .unwrap();

    let mut counts: BTreeMap<String, Counts> = BUILTIN_DETECTORS
        .iter()
        .map(|name| (name.to_string(), Counts::default()))
        .collect();
    let mut mistakes = Vec::new();
    let mut lines = 0;
    for (number, line) in CORPUS.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        lines += 1;
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            fields.len(),
            3,
            "line {}: expected 3 tab-separated fields",
            number + 1
        );
        let text = unescape(fields[1]);
        let mut expected: Vec<(String, String)> = fields[2]
            .split(" || ")
            .filter(|item| !item.is_empty())
            .map(|item| {
                let (detector, value) = item.split_once('=').expect("detector=value");
                assert!(
                    BUILTIN_DETECTORS.contains(&detector),
                    "line {}: {detector}",
                    number + 1
                );
                (detector.to_string(), unescape(value))
            })
            .collect();
        for detection in plan.detections(&text) {
            let found = (
                detection.detector.to_string(),
                text[detection.range.clone()].to_string(),
            );
            let entry = counts.get_mut(&found.0).unwrap();
            if let Some(position) = expected.iter().position(|item| *item == found) {
                expected.remove(position);
                entry.true_positives += 1;
            } else {
                entry.false_positives += 1;
                mistakes.push(format!(
                    "FP line {}: {}={:?} in {:?}",
                    number + 1,
                    found.0,
                    found.1,
                    text
                ));
            }
        }
        for (detector, value) in expected {
            counts.get_mut(&detector).unwrap().false_negatives += 1;
            mistakes.push(format!(
                "FN line {}: {detector}={value:?} in {text:?}",
                number + 1
            ));
        }
    }
    assert!(lines > 300, "corpus too small: {lines} lines");

    println!(
        "{:<8} {:>5} {:>5} {:>5} {:>10} {:>8}",
        "detector", "TP", "FP", "FN", "precision", "recall"
    );
    let mut failures = Vec::new();
    for (detector, count) in &counts {
        let precision = count.true_positives as f64
            / (count.true_positives + count.false_positives).max(1) as f64;
        let recall = count.true_positives as f64
            / (count.true_positives + count.false_negatives).max(1) as f64;
        println!(
            "{detector:<8} {:>5} {:>5} {:>5} {precision:>10.3} {recall:>8.3}",
            count.true_positives, count.false_positives, count.false_negatives
        );
        if count.true_positives + count.false_negatives < MIN_POSITIVES {
            failures.push(format!(
                "{detector}: only {} labelled positives",
                count.true_positives + count.false_negatives
            ));
        }
        if precision < MIN_PRECISION || recall < MIN_RECALL {
            failures.push(format!(
                "{detector}: precision {precision:.3}, recall {recall:.3}"
            ));
        }
    }
    for mistake in &mistakes {
        println!("{mistake}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
