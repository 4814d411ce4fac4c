//! What validation needs to know about the log already written: the registry, the events by
//! id (amendment targets, idempotent re-imports) and the pairings of a staff member and child.
//!
//! This module owns the `Known` trait, `MemoryKnown` (in memory: tests, small logs) and
//! `StoreKnown` (the sled store). It must never write anything.

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use events::{Envelope, Event, EventKind, Registry};

use crate::people::People;
use store::{Store, StoreError};

/// An event already in the log, as originally recorded (corrections are separate events and
/// are not applied here).
#[derive(Debug, Clone, PartialEq)]
pub struct KnownEvent {
    /// The event's type (`talk_held`, `pairing_assigned`, …).
    pub kind: EventKind,
    /// The envelope's `occurred_at` as first recorded, in UTC.
    pub occurred_at: DateTime<Utc>,
    /// Who recorded it: part of the event (the same payload by another actor is another event).
    pub actor: String,
    /// The payload as first recorded, before any correction.
    pub event: Event,
}

/// What validating a batch needs from the log written so far.
pub trait Known {
    /// Schools, terms, staff, children, incidents and retracted ids, as of the log's head.
    fn registry(&self) -> &Registry;
    /// The event with this id, if the log has it.
    fn event_by_id(&self, id: &str) -> Option<KnownEvent>;
    /// The `pairing_assigned` events of this staff member and child, as `(event id, from)`,
    /// retracted ones included (the caller filters them with its registry).
    fn pairings(&self, staff: &str, child: &str) -> Vec<(String, NaiveDate)>;
    /// The children and staff by name, as their files stand at the log's head (for workbook
    /// rows that name a child by 姓名 + 年级 + 班级 instead of by id).
    fn people(&self) -> People;
}

/// A log held in memory: built from envelopes (a test log, an export) or from accepted drafts.
#[derive(Debug, Clone, Default)]
pub struct MemoryKnown {
    registry: Registry,
    events: HashMap<String, KnownEvent>,
    pairings: HashMap<(String, String), Vec<(String, NaiveDate)>>,
    people: People,
}

impl MemoryKnown {
    /// An empty log.
    pub fn new() -> MemoryKnown {
        MemoryKnown::default()
    }

    /// The log made of these envelopes, in their order.
    pub fn from_envelopes(envelopes: &[Envelope]) -> MemoryKnown {
        let mut known = MemoryKnown::new();
        for e in envelopes {
            known.push(&e.id, e.occurred_at, &e.actor, &e.event);
        }
        known
    }

    /// Appends one event. An id already held is ignored, as the store ignores it.
    pub fn push(&mut self, id: &str, occurred_at: DateTime<Utc>, actor: &str, event: &Event) {
        if self.events.contains_key(id) {
            return;
        }
        self.registry.observe(event);
        self.people.observe(id, event);
        if let Event::PairingAssigned {
            staff, child, from, ..
        } = event
        {
            self.pairings
                .entry((staff.clone(), child.clone()))
                .or_default()
                .push((id.to_owned(), *from));
        }
        self.events.insert(
            id.to_owned(),
            KnownEvent {
                kind: event.kind(),
                occurred_at,
                actor: actor.to_owned(),
                event: event.clone(),
            },
        );
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

impl Known for MemoryKnown {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn event_by_id(&self, id: &str) -> Option<KnownEvent> {
        self.events.get(id).cloned()
    }

    fn pairings(&self, staff: &str, child: &str) -> Vec<(String, NaiveDate)> {
        self.pairings
            .get(&(staff.to_owned(), child.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    fn people(&self) -> People {
        self.people.clone()
    }
}

/// Opens a sealed envelope read from the store (the binary's vault, docs/privacy.md), so
/// that validation compares payloads in clear.
pub type Open<'o> =
    &'o dyn Fn(Envelope) -> Result<Envelope, Box<dyn std::error::Error + Send + Sync>>;

/// Why the store could not answer validation.
#[derive(Debug, thiserror::Error)]
pub enum KnownError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed envelope could not be opened.
    #[error("opening a sealed event of the store")]
    Open(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The sled store as validation sees it: the registry is loaded once; events and pairings are
/// looked up through the store's indexes. `Known` cannot fail, so a read error is kept and
/// the lookup answers "not found": the caller must check `take_error` after validating and
/// discard the result if there was one.
pub struct StoreKnown<'s> {
    store: &'s Store,
    registry: Registry,
    open: Option<Open<'s>>,
    error: RefCell<Option<KnownError>>,
}

impl<'s> StoreKnown<'s> {
    /// The store's view as of its current head.
    pub fn new(store: &'s Store) -> StoreKnown<'s> {
        // A registry that cannot be read is the first read error (the import then stops
        // with it, as for any other read of the store while validating).
        let (registry, error) = match store.registry() {
            Ok(r) => (r, None),
            Err(e) => (Registry::default(), Some(e)),
        };
        StoreKnown {
            registry,
            store,
            open: None,
            error: RefCell::new(error.map(KnownError::Store)),
        }
    }

    /// Every envelope read is opened with `open` before validation looks at it.
    pub fn opening(mut self, open: Open<'s>) -> StoreKnown<'s> {
        self.open = Some(open);
        self
    }

    /// The first read error met while validating, if any.
    pub fn take_error(&self) -> Option<KnownError> {
        self.error.borrow_mut().take()
    }

    fn keep<T, E: Into<KnownError>>(&self, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                let mut slot = self.error.borrow_mut();
                if slot.is_none() {
                    *slot = Some(e.into());
                }
                None
            }
        }
    }

    fn opened(&self, env: Envelope) -> Option<Envelope> {
        match self.open {
            None => Some(env),
            Some(open) => self.keep(open(env).map_err(KnownError::Open)),
        }
    }
}

impl Known for StoreKnown<'_> {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn event_by_id(&self, id: &str) -> Option<KnownEvent> {
        let env = self.keep(self.store.get_by_id(id)).flatten()?;
        let env = self.opened(env)?;
        Some(KnownEvent {
            kind: env.event.kind(),
            occurred_at: env.occurred_at,
            actor: env.actor,
            event: env.event,
        })
    }

    fn pairings(&self, staff: &str, child: &str) -> Vec<(String, NaiveDate)> {
        // Pairings carry no sealed field: the clear parts suffice.
        let envs = self
            .keep(self.store.by_staff(staff, None))
            .unwrap_or_default();
        envs.into_iter()
            .filter_map(|e| match e.event {
                Event::PairingAssigned { child: c, from, .. } if c == child => Some((e.id, from)),
                _ => None,
            })
            .collect()
    }

    /// Reads the whole log once (only workbooks that name children by name ask).
    fn people(&self) -> People {
        let mut people = People::new();
        for env in self.store.scan(None) {
            match self.keep(env).and_then(|e| self.opened(e)) {
                Some(e) => people.observe(&e.id, &e.event),
                None => break,
            }
        }
        people
    }
}
