//! The flat JSON wire form of events (rules §5.1): `type`, `id`, `occurred_at`, `actor`
//! (and `recorded_at` in exports), then the payload's fields side by side.
//!
//! Storage is externally tagged (`{"talk_held": {…}}`) with instants as integer
//! microseconds; the wire is flat with instants as RFC 3339 at +08:00. This module owns the
//! conversion both ways; it must never validate references (that is `ingest`).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::envelope::Envelope;
use crate::event::Event;
use crate::time::{format_local, parse_instant};

/// Payload fields holding instants: integer microseconds in storage, RFC 3339 on the wire.
pub const INSTANT_FIELDS: [&str; 2] = ["happened_at", "notified_at"];

/// The payload of an event as flat wire fields (without `type`), instants as RFC 3339.
pub fn payload_of(event: &Event) -> Map<String, Value> {
    let mut body = match serde_json::to_value(event) {
        // Externally tagged: `{"talk_held": {…}}`; every variant carries an object.
        Ok(Value::Object(m)) => match m.into_iter().next() {
            Some((_, Value::Object(body))) => body,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    for key in INSTANT_FIELDS {
        if let Some(t) = body
            .get(key)
            .and_then(Value::as_i64)
            .and_then(DateTime::<Utc>::from_timestamp_micros)
        {
            body.insert(key.to_owned(), Value::from(format_local(t)));
        }
    }
    body
}

/// Turns flat payload fields (instants as RFC 3339 or dates) into the storage form that
/// deserializes as `Event`: `{"<type>": {fields}}`. An unparsable instant is left as it is so
/// that decoding reports it against its field.
pub fn tagged(kind: &str, mut fields: Map<String, Value>) -> Value {
    for key in INSTANT_FIELDS {
        if let Some(t) = fields
            .get(key)
            .and_then(Value::as_str)
            .and_then(parse_instant)
        {
            fields.insert(key.to_owned(), Value::from(t.timestamp_micros()));
        }
    }
    let mut m = Map::new();
    m.insert(kind.to_owned(), Value::Object(fields));
    Value::Object(m)
}

/// Builds an event from its type name and flat payload fields.
pub fn event_from_wire(kind: &str, fields: Map<String, Value>) -> Result<Event, serde_json::Error> {
    serde_json::from_value(tagged(kind, fields))
}

/// One exported line: the flat form with both times, re-importable with
/// `--preserve-recorded-at` to the same event, id and times.
pub fn envelope_to_wire(env: &Envelope) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), Value::from(env.event.kind().as_str()));
    m.insert("id".into(), Value::from(env.id.clone()));
    m.insert(
        "occurred_at".into(),
        Value::from(format_local(env.occurred_at)),
    );
    m.insert(
        "recorded_at".into(),
        Value::from(format_local(env.recorded_at)),
    );
    m.insert("actor".into(), Value::from(env.actor.clone()));
    m.extend(payload_of(&env.event));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NotifiedParty;

    #[test]
    fn instants_travel_as_rfc3339_and_come_back_exactly() {
        let t = parse_instant("2025-10-09T14:05:00.123456+08:00").unwrap();
        let e = Event::IncidentNotified {
            staff: "t1".into(),
            incident: "i1".into(),
            party: NotifiedParty::Bureau,
            notified_at: t,
        };
        let wire = payload_of(&e);
        assert_eq!(wire["notified_at"], "2025-10-09T14:05:00.123456+08:00");
        assert_eq!(event_from_wire("incident_notified", wire).unwrap(), e);
    }
}
