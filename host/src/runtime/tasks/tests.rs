//! Tests of `tasks`: splitting batches by partition, and what a task keeps of them.

use super::super::continuity::{first_gap, skip_before, truncate};
use super::*;

fn batch(records: &[(i32, i64)]) -> SourceBatch {
    let mut batch = SourceBatch::default();
    for &(p, o) in records {
        batch.push(p, o, format!("r{p}-{o}").as_bytes());
    }
    batch
}

#[test]
fn a_batch_splits_by_partition_with_its_news() {
    let mut b = batch(&[(0, 1), (1, 7), (0, 2), (2, 3)]);
    b.at_end = vec![1];
    b.assigned = vec![5];
    let parts = split(b, [0, 1, 2, 5, 9].into_iter());
    assert_eq!(parts.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 5]);
    assert_eq!(parts[&0].offsets, vec![1, 2]);
    assert_eq!(parts[&0].values_row(1), batch(&[(0, 2)]).values_row(0));
    assert_eq!(parts[&1].at_end, vec![1]);
    assert_eq!(parts[&5].assigned, vec![5]);
    assert!(parts.values().all(|p| !p.end));
}

#[test]
fn runs_of_one_partition_keep_every_row_and_a_batch_of_one_partition_is_handed_on_whole() {
    let records = [
        (3, 1),
        (3, 2),
        (3, 3),
        (1, 10),
        (1, 11),
        (3, 4),
        (2, 0),
        (1, 12),
    ];
    let parts = split(batch(&records), std::iter::empty());
    for (p, part) in &parts {
        let expected: Vec<(i32, i64)> = records.iter().copied().filter(|r| r.0 == *p).collect();
        assert_eq!(part.len(), expected.len());
        assert_eq!(part.values.ends.len(), expected.len());
        for (i, &(q, o)) in expected.iter().enumerate() {
            assert_eq!((part.partitions[i], part.offsets[i]), (q, o));
            assert_eq!(
                part.values_row(i),
                batch(&[(q, o)]).values_row(0),
                "{p} {i}"
            );
        }
    }
    let one = batch(&[(4, 7), (4, 8)]);
    let (data, ends) = (one.values.data.clone(), one.values.ends.clone());
    let parts = split(one, std::iter::empty());
    assert_eq!(
        (&parts[&4].values.data, &parts[&4].values.ends),
        (&data, &ends)
    );
    assert_eq!(parts[&4].offsets, vec![7, 8]);
}

#[test]
fn the_end_reaches_every_held_partition() {
    let mut b = batch(&[(0, 1)]);
    b.end = true;
    let parts = split(b, [0, 3].into_iter());
    assert_eq!(parts.keys().copied().collect::<Vec<_>>(), vec![0, 3]);
    assert!(parts.values().all(|p| p.end));
    assert!(parts[&3].is_empty());
}

#[test]
fn records_in_the_restored_state_are_skipped() {
    let kept = skip_before(batch(&[(0, 4), (0, 5), (0, 6)]), 5);
    assert_eq!(kept.offsets, vec![5, 6]);
    assert_eq!(kept.values_row(0), batch(&[(0, 5)]).values_row(0));
}

#[test]
fn a_gap_is_found_and_the_batch_cut_before_it() {
    let b = batch(&[(0, 5), (0, 6), (0, 9), (0, 10)]);
    assert_eq!(first_gap(&b, 5), Some((2, 7)));
    assert_eq!(first_gap(&b, 4), Some((0, 4)));
    assert_eq!(first_gap(&batch(&[(0, 5), (0, 6)]), 5), None);
    let cut = truncate(b, 2);
    assert_eq!(cut.offsets, vec![5, 6]);
    assert_eq!(cut.values_row(1), batch(&[(0, 6)]).values_row(0));
    assert_eq!(cut.values.ends.len(), 2);
}

#[test]
fn records_read_twice_count_once() {
    // Read up to 9, then again from 7 (the source went back after a rebalance).
    let kept = skip_before(
        batch(&[(0, 7), (0, 8), (0, 9), (0, 7), (0, 8), (0, 9), (0, 10)]),
        7,
    );
    assert_eq!(kept.offsets, vec![7, 8, 9, 10]);
    assert_eq!(kept.values_row(3), batch(&[(0, 10)]).values_row(0));
}
