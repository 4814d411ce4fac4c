//! The stored envelope across schema versions: a body written by an earlier careledger is
//! still read (upcast), and one from an unknown version is refused by name.

use chrono::{TimeZone, Utc};
use events::envelope::DecodeError;
use events::event::Mood;
use events::{Envelope, Event, Hash, Source};

/// A schema-1 body exactly as schema-1 careledger stored it, and the hash stored beside it.
const V1_BODY: &[u8] = include_bytes!("data/envelope-v1.msgpack");
const V1_HASH: &str = include_str!("data/envelope-v1.hash");

fn v1_envelope() -> Envelope {
    Envelope {
        sealed: None,
        schema: 1,
        seq: 7,
        id: "talk-sq-c01-2025-10-09".to_owned(),
        recorded_at: Utc.with_ymd_and_hms(2025, 10, 9, 12, 0, 0).unwrap(),
        occurred_at: Utc.with_ymd_and_hms(2025, 10, 9, 1, 30, 0).unwrap(),
        actor: "sq-t02".to_owned(),
        source: Source::Import("talks.csv".to_owned()),
        event: Event::TalkHeld {
            staff: "sq-t02".to_owned(),
            child: "sq-c01".to_owned(),
            topic: "学习".to_owned(),
            summary: "谈了期中考试".to_owned(),
            mood: Mood::Ok,
            follow_up: None,
        },
        prev_hash: Hash([7; 32]),
        hash: Hash::ZERO,
    }
}

#[test]
fn a_stored_v1_body_decodes_to_the_same_envelope_and_hash() {
    let hash = Hash::from_hex(V1_HASH.trim()).expect("the fixture hash is 64 hex digits");
    let env = Envelope::decode_body(V1_BODY, hash).expect("a v1 body decodes");
    let mut want = v1_envelope();
    want.hash = hash;
    assert_eq!(env, want);
    // The chain still verifies the body as stored.
    assert_eq!(Envelope::chain_hash(&env.prev_hash, V1_BODY), hash);
}

#[test]
fn today_s_encoder_writes_v1_bodies_byte_for_byte() {
    // If this fails, the stored form changed: bump SCHEMA, keep the old fixture, add an
    // upcast step for it, and add a fixture for the new version.
    assert_eq!(v1_envelope().encode_body(), V1_BODY);
}

#[test]
fn an_unknown_schema_is_refused_by_name() {
    let mut env = v1_envelope();
    env.schema = 99;
    let body = env.encode_body();
    match Envelope::decode_body(&body, Hash::ZERO) {
        Err(e @ DecodeError::UnknownSchema { found: 99 }) => {
            assert_eq!(
                e.to_string(),
                "envelope schema 99 is not known to this careledger (it reads 1 to 2); use a newer careledger"
            );
        }
        other => panic!("expected an unknown-schema error, got {other:?}"),
    }
}

#[test]
fn a_future_shape_that_does_not_fit_is_still_named_by_its_version() {
    // A body of a future schema (3) whose fields no longer fit today's shape: only `schema` is
    // readable.
    #[derive(serde::Serialize)]
    struct Future {
        schema: u16,
        sealed: Vec<u8>,
    }
    let body = rmp_serde::to_vec_named(&Future {
        schema: 3,
        sealed: vec![1, 2, 3],
    })
    .unwrap();
    assert!(matches!(
        Envelope::decode_body(&body, Hash::ZERO),
        Err(DecodeError::UnknownSchema { found: 3 })
    ));
    assert!(matches!(
        Envelope::decode_body(b"\x01\x02", Hash::ZERO),
        Err(DecodeError::Malformed(_))
    ));
}
