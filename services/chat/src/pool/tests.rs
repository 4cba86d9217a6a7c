//! The pick: round robin, cooldowns (whole key and per model), tried keys, limits.
use super::*;
use crate::limits::MINUTE_MS;

fn pool_key(id: i64, status: pb::KeyStatus, cooldown_until_ms: i64) -> pb::PoolKey {
    pb::PoolKey {
        id,
        value: format!("key-{id}"),
        status: status.into(),
        cooldown_until_ms,
        key_type: "gemini".into(),
        model_cooldowns: Vec::new(),
    }
}

fn pool_of(keys: Vec<pb::PoolKey>) -> LocalPool {
    let pool = LocalPool::default();
    pool.apply(pb::pool_event::Event::Snapshot(pb::PoolSnapshot {
        keys,
        usage: None,
    }));
    pool
}

#[test]
fn round_robin_over_usable_keys() {
    let pool = pool_of(vec![
        pool_key(1, pb::KeyStatus::Active, 0),
        pool_key(2, pb::KeyStatus::Disabled, 0),
        pool_key(3, pb::KeyStatus::Active, 0),
    ]);
    let picks: Vec<i64> = (0..4).map(|_| pool.pick("m", &[], 0).unwrap().id).collect();
    assert_eq!(picks, vec![1, 3, 1, 3]);
}

#[test]
fn cooling_keys_are_skipped_until_their_time() {
    let pool = pool_of(vec![pool_key(1, pb::KeyStatus::Active, 500)]);
    assert_eq!(
        pool.pick("m", &[], 100).err(),
        Some(NoKey::AllCooling { until_ms: 500 })
    );
    assert_eq!(pool.pick("m", &[], 500).unwrap().id, 1);
}

#[test]
fn tried_keys_are_not_picked_again() {
    let pool = pool_of(vec![
        pool_key(1, pb::KeyStatus::Active, 0),
        pool_key(2, pb::KeyStatus::Active, 0),
    ]);
    assert_eq!(pool.pick("m", &[1], 0).unwrap().id, 2);
    assert_eq!(pool.pick("m", &[1, 2], 0).err(), Some(NoKey::AllTried));
}

#[test]
fn events_update_the_ring() {
    let pool = pool_of(vec![pool_key(1, pb::KeyStatus::Active, 0)]);
    pool.apply(pb::pool_event::Event::Upserted(pool_key(
        1,
        pb::KeyStatus::Disabled,
        0,
    )));
    assert_eq!(pool.pick("m", &[], 0).err(), Some(NoKey::NoneUsable));
    pool.apply(pb::pool_event::Event::Upserted(pool_key(
        2,
        pb::KeyStatus::Active,
        0,
    )));
    assert_eq!(pool.pick("m", &[], 0).unwrap().id, 2);
    pool.apply(pb::pool_event::Event::RemovedId(2));
    assert!(pool.pick("m", &[], 0).is_err());
}

/// A key cooling for one model serves the others, and that model again at its time.
#[test]
fn a_model_cooldown_skips_the_key_for_that_model_alone() {
    let mut cooling = pool_key(1, pb::KeyStatus::Active, 0);
    cooling.model_cooldowns = vec![pb::ModelCooldown {
        model: "gemini-2.5-pro".into(),
        until_ms: 5_000,
    }];
    let pool = pool_of(vec![cooling, pool_key(2, pb::KeyStatus::Active, 0)]);
    for _ in 0..4 {
        assert_eq!(pool.pick("gemini-2.5-pro", &[], 100).unwrap().id, 2);
    }
    assert_eq!(
        pool.pick("gemini-2.5-pro", &[2], 100).err(),
        Some(NoKey::AllCooling { until_ms: 5_000 })
    );
    assert_eq!(pool.pick("gemini-2.5-flash", &[2], 100).unwrap().id, 1);
    assert_eq!(pool.pick("gemini-2.5-pro", &[2], 5_000).unwrap().id, 1);
    // Marked by this replica before the keys service's verdict; the verdict replaces it.
    let key = pool.pick("gemini-2.5-flash", &[2], 100).unwrap();
    key.mark_model_cooling_until("gemini-2.5-flash", 9_000);
    assert!(pool.pick("gemini-2.5-flash", &[2], 8_999).is_err());
    pool.apply(pb::pool_event::Event::Upserted(pool_key(
        1,
        pb::KeyStatus::Active,
        0,
    )));
    assert_eq!(pool.pick("gemini-2.5-flash", &[2], 100).unwrap().id, 1);
}

#[test]
fn a_locally_disabled_key_is_skipped_at_once() {
    let pool = pool_of(vec![
        pool_key(1, pb::KeyStatus::Active, 0),
        pool_key(2, pb::KeyStatus::Active, 0),
    ]);
    pool.pick("m", &[], 0).unwrap().mark_disabled();
    for _ in 0..4 {
        assert_eq!(pool.pick("m", &[], 0).unwrap().id, 2);
    }
}

fn limited_pool(table: &str, keys: Vec<pb::PoolKey>) -> LocalPool {
    use gb_runtime::settings::SettingValue;
    let pool = pool_of(keys);
    let Ok(table) = KeyModelLimits::parse(table) else {
        panic!("{table} parses");
    };
    pool.set_limits(PoolLimits {
        table,
        reset: TimeZone::default(),
    });
    pool
}

/// With every key at its limit for a model, the pick says when the first is free; the other
/// models, and keys of another type, are not held back.
#[test]
fn a_key_at_its_limit_is_skipped_for_that_model() {
    let mut paid = pool_key(2, pb::KeyStatus::Active, 0);
    paid.key_type = "paid".into();
    let pool = limited_pool(
        r#"{"gemini-2.5-pro": {"rpm": 1}, "paid:gemini-2.5-pro": {"rpm": 2}}"#,
        vec![pool_key(1, pb::KeyStatus::Active, 0), paid],
    );
    let now = 1_000;
    let mut held = Vec::new();
    for _ in 0..3 {
        let picked = pool.pick("gemini-2.5-pro", &[], now).unwrap();
        held.push(picked);
    }
    let mut ids: Vec<i64> = held.iter().map(|picked| picked.id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec![1, 2, 2],
        "one on the free key, two on the paid one"
    );
    assert_eq!(
        pool.pick("gemini-2.5-pro", &[], now).err(),
        Some(NoKey::AllCooling {
            until_ms: now + MINUTE_MS
        }),
        "in flight counts"
    );
    assert!(pool.pick("gemini-2.5-flash", &[], now).is_ok());
    // Reported and acknowledged: the keys service's sums hold them now.
    for (seq, picked) in held.iter().enumerate() {
        picked.settle(Some(seq as u64 + 1), 10);
    }
    drop(held);
    assert!(pool.pick("gemini-2.5-pro", &[], now + 10).is_err());
    assert!(
        pool.pick("gemini-2.5-pro", &[], now + MINUTE_MS).is_ok(),
        "free once the minute has passed"
    );
}

/// An attempt dropped before it was reported (the client left) still counts.
#[test]
fn a_dropped_attempt_still_counts() {
    let pool = limited_pool(
        r#"{"gemini-2.5-pro": {"rpm": 1}}"#,
        vec![pool_key(1, pb::KeyStatus::Active, 0)],
    );
    drop(pool.pick("gemini-2.5-pro", &[], 0).unwrap());
    assert!(pool.pick("gemini-2.5-pro", &[], 1).is_err());
}
