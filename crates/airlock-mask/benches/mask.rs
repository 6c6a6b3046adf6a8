//! Throughput of `MaskPlan::mask_text` on realistic result text: per cell
//! (how the gateway calls it, one DataRow value at a time) and as one large
//! blob, for mostly-clean rows (~1.5% of cells hold PII) and PII-dense rows.
//!
//! Run: `cargo bench -p airlock-mask --bench mask`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // bench code

use std::hint::black_box;

use airlock_mask::{MaskPlan, MaskSpec, MaskStats, Style, BUILTIN_DETECTORS};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Deterministic pseudo-random numbers (no `rand` dependency needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Jane", "John", "Amelia", "Noah", "Olivia", "Liam", "Sofia", "Mateo", "Zoë", "Hiroshi",
];
const LAST: &[&str] = &[
    "Doe", "Smith", "García", "Müller", "Nakamura", "O'Brien", "Kowalski", "Haddad",
];
const PRODUCTS: &[&str] = &[
    "Stainless steel water bottle, 750 ml, keeps drinks cold for 24 hours",
    "Organic cotton t-shirt (M), washed indigo",
    "USB-C charging cable 2 m, braided",
    "Noise-cancelling headphones with 30h battery life",
    "Ceramic pour-over coffee dripper, size 02",
    "Pack of 3 notebooks, A5, dotted, 120 pages",
    "Ergonomic office chair with lumbar support",
];
const STATUSES: &[&str] = &[
    "shipped",
    "pending",
    "delivered",
    "cancelled",
    "refunded",
    "on_hold",
    "processing",
];
const PII: &[&str] = &[
    "jane.doe@example.com",
    "Customer asked to update card 4111 1111 1111 1111",
    "+1 (415) 555-2671",
    "GB82 WEST 1234 5698 7654 32",
    "SSN 536-22-1234 on file",
    "token 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",
    "postgres://app:s3cret@db.internal/prod",
    "client 203.0.113.195",
];

/// One result row as cells: id, UUID, name, product, amount, status,
/// timestamp, note. `pii_percent` of the notes carry a sensitive value.
fn row(rng: &mut Lcg, pii_percent: u64) -> Vec<String> {
    let id = rng.below(10_000_000).to_string();
    let uuid = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        rng.next() as u32,
        rng.below(0x10000),
        rng.below(0x1000),
        rng.below(0x1000),
        rng.next() << 16 | rng.below(0x10000)
    );
    let name = format!("{} {}", rng.pick(FIRST), rng.pick(LAST));
    let product = rng.pick(PRODUCTS).to_owned();
    let amount = format!("{}.{:02}", rng.below(2000), rng.below(100));
    let status = rng.pick(STATUSES).to_owned();
    let timestamp = format!(
        "2024-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00",
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1_000_000)
    );
    let note = if rng.below(100) < pii_percent {
        rng.pick(PII).to_owned()
    } else {
        rng.pick(&[
            "",
            "gift wrap",
            "leave at the door",
            "call before delivery",
            "fragile, handle with care",
        ])
        .to_owned()
    };
    vec![id, uuid, name, product, amount, status, timestamp, note]
}

fn cells(pii_percent_of_notes: u64, rows: usize) -> Vec<String> {
    let mut rng = Lcg(42);
    (0..rows)
        .flat_map(|_| row(&mut rng, pii_percent_of_notes))
        .collect()
}

/// All built-in detectors, or the comma-separated list in
/// `AIRLOCK_MASK_BENCH_DETECTORS` (to measure one detector's cost).
fn plan() -> MaskPlan {
    let detectors = match std::env::var("AIRLOCK_MASK_BENCH_DETECTORS") {
        Ok(list) => list
            .split(',')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect(),
        Err(_) => BUILTIN_DETECTORS
            .iter()
            .map(|name| name.to_string())
            .collect(),
    };
    MaskPlan::compile(&MaskSpec {
        detectors,
        columns: vec!["*password*".into(), "*token*".into()],
        style: Style::Partial,
        ..MaskSpec::default()
    })
    .unwrap()
}

fn bench(criterion: &mut Criterion) {
    let plan = plan();
    // 8 cells per row; 12% of notes with PII = 1.5% of cells.
    let datasets = [("clean", cells(12, 20_000)), ("dense", cells(100, 20_000))];
    for (label, cells) in &datasets {
        let bytes: usize = cells.iter().map(String::len).sum();
        let masked_cells = cells
            .iter()
            .filter(|cell| {
                let mut stats = MaskStats::new();
                let _ = plan.mask_text(cell, &mut stats);
                stats.total() > 0
            })
            .count();
        println!(
            "{label}: {} cells, {bytes} bytes, {:.2}% of cells masked",
            cells.len(),
            100.0 * masked_cells as f64 / cells.len() as f64
        );

        let mut group = criterion.benchmark_group(format!("mask_text/{label}"));
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function("per_cell", |bencher| {
            bencher.iter(|| {
                let mut stats = MaskStats::new();
                let mut changed = 0usize;
                for cell in cells {
                    if let std::borrow::Cow::Owned(masked) =
                        plan.mask_text(black_box(cell), &mut stats)
                    {
                        changed += masked.len();
                    }
                }
                black_box((changed, stats.total()))
            });
        });
        let blob = cells
            .chunks(8)
            .map(|row| row.join("\t"))
            .collect::<Vec<_>>()
            .join("\n");
        group.throughput(Throughput::Bytes(blob.len() as u64));
        group.bench_function("blob", |bencher| {
            bencher.iter(|| {
                let mut stats = MaskStats::new();
                let masked = plan.mask_text(black_box(&blob), &mut stats);
                black_box((masked.len(), stats.total()))
            });
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
