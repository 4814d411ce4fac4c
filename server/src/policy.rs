//! The one authorisation decision of the service: `authorize(principal, action, resource)`.
//!
//! Every handler calls it (`.ci/run` checks that each handler of `api` does) and acts on its
//! answer: `Allow`, `Forbidden` (403: the role may never do this) or `NotFound` (404: the
//! thing is out of the caller's scope, answered exactly like a thing that does not exist, so
//! that existence does not leak). The table is a `match` over five roles (docs/service.md).
//!
//! This module owns that table; it must never read the store (the handler gathers the facts
//! of the resource first) and never be bypassed by a check elsewhere.

use events::{Event, EventKind};
use serde::{Deserialize, Serialize};

/// A role of an account (docs/service.md, roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Records care for the children paired with them; reads those children.
    Teacher,
    /// Records counseling sessions; the only reader of counseling notes.
    Counselor,
    /// The school's registry, pairings, policy, rosters and school-wide reads, no notes.
    SchoolAdmin,
    /// Read-only: any child, any as-of, history, back-fill, verify, scores, access log.
    Inspector,
    /// Term statistics only: nothing identifying.
    Bureau,
}

impl Role {
    /// Every role, for the matrix test and the demo.
    pub const ALL: [Role; 5] = [
        Role::Teacher,
        Role::Counselor,
        Role::SchoolAdmin,
        Role::Inspector,
        Role::Bureau,
    ];

    /// The role's name on the wire and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Teacher => "teacher",
            Role::Counselor => "counselor",
            Role::SchoolAdmin => "school_admin",
            Role::Inspector => "inspector",
            Role::Bureau => "bureau",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the role's scope is a county (inspector, bureau) rather than a school.
    pub fn county_scoped(self) -> bool {
        matches!(self, Role::Inspector | Role::Bureau)
    }
}

/// Where an account may look: one school, or one county.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// A school id.
    School(String),
    /// A county name (as `school_registered` names it).
    County(String),
}

/// What a token may be used for (a browser session may do all its role allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Reads only.
    Read,
    /// Reads and records.
    Record,
    /// Everything the role allows, account administration included.
    All,
}

/// Who is asking, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account name.
    pub account: String,
    /// Its role.
    pub role: Role,
    /// The staff member the account is, if one (the actor of what it records).
    pub staff: Option<String>,
    /// Where it may look.
    pub scope: Scope,
    /// `Some` when authenticated by a bearer token: what the token allows.
    pub token: Option<TokenScope>,
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Record a care interaction, pairing-free event or incident about children.
    RecordCare,
    /// Record a counseling session.
    RecordCounseling,
    /// Record a registry event (school, term, policy, staff, child, pairing).
    RecordRegistry,
    /// Record a correction or retraction of an event.
    Amend,
    /// Read one child's file (archive, contact card, history, progress).
    ReadChild,
    /// See counseling notes in what is read.
    ReadNotes,
    /// Read a school-wide view (archives, pairings, back-fill).
    ReadSchool,
    /// Read a staff member's worklist.
    ReadWorklist,
    /// Read a school's assessment scores.
    ReadScores,
    /// Read term statistics (aggregated, nothing identifying).
    ReadTermReport,
    /// Check the hash chain.
    Verify,
    /// Read the access log.
    ReadAccessLog,
    /// Manage accounts and tokens.
    ManageAccounts,
    /// Record a child's erasure. No role may do it through the HTTP API: an erasure is the
    /// event *and* the destruction of the child's key, which only the operator's
    /// `careledger erase` does — on the store, or through a running service's admin socket,
    /// whose writer runs it (docs/service.md).
    Erase,
}

impl Action {
    /// Every action, for the matrix test.
    pub const ALL: [Action; 14] = [
        Action::RecordCare,
        Action::RecordCounseling,
        Action::RecordRegistry,
        Action::Amend,
        Action::ReadChild,
        Action::ReadNotes,
        Action::ReadSchool,
        Action::ReadWorklist,
        Action::ReadScores,
        Action::ReadTermReport,
        Action::Verify,
        Action::ReadAccessLog,
        Action::ManageAccounts,
        Action::Erase,
    ];

    /// The token scope this action needs (exhaustive: a new action must be classified).
    fn needs(self) -> TokenScope {
        match self {
            Action::ReadChild
            | Action::ReadNotes
            | Action::ReadSchool
            | Action::ReadWorklist
            | Action::ReadScores
            | Action::ReadTermReport
            | Action::Verify
            | Action::ReadAccessLog => TokenScope::Read,
            Action::RecordCare
            | Action::RecordCounseling
            | Action::RecordRegistry
            | Action::Amend => TokenScope::Record,
            Action::ManageAccounts | Action::Erase => TokenScope::All,
        }
    }
}

/// The action an event needs.
pub fn action_of(event: &Event) -> Action {
    action_of_kind(event.kind())
}

/// The action an event type needs.
pub fn action_of_kind(kind: EventKind) -> Action {
    use EventKind as K;
    match kind {
        K::CounselingHeld => Action::RecordCounseling,
        K::ChildErased => Action::Erase,
        K::Corrected | K::Retracted => Action::Amend,
        K::SchoolRegistered
        | K::TermDefined
        | K::PolicyAdopted
        | K::StaffJoined
        | K::StaffLeft
        | K::ChildRegistered
        | K::ChildUpdated
        | K::ChildStatusChanged
        | K::PairingAssigned
        | K::PairingEnded
        | K::BuddyAssigned => Action::RecordRegistry,
        K::TalkHeld
        | K::ParentCalled
        | K::FamilyCallArranged
        | K::GuardianContacted
        | K::ClassTeacherContacted
        | K::HomeVisited
        | K::LetterWritten
        | K::WarmthVisited
        | K::Tutored
        | K::ActivityHeld
        | K::AidGranted
        | K::AwardGiven
        | K::AcademicResultRecorded
        | K::PhysicalTestRecorded
        | K::IncidentReported
        | K::IncidentNotified => Action::RecordCare,
    }
}

/// Where a thing is, for the scope check: its school and that school's county (`None` when
/// it does not exist).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// The school.
    pub school: Option<String>,
    /// The school's county.
    pub county: Option<String>,
}

/// The thing acted on, with the facts the decision needs (gathered by the handler).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A child's file. `paired`: the principal's staff member is or was paired with the child.
    Child {
        /// Where the child is (`school: None`: no such child).
        place: Place,
        /// Whether the principal's staff member has been paired with the child.
        paired: bool,
    },
    /// An event to record.
    Event {
        /// Where its child (or, for a registry event, its school) is.
        place: Place,
        /// The event's `staff` is the principal's staff member (or it names no staff).
        own_staff: bool,
        /// The principal's staff member was paired with every child of the event on the day
        /// it happened.
        paired_on_day: bool,
        /// For an amendment: the amended event was recorded by the principal's staff member.
        own_target: bool,
    },
    /// A school.
    School(Place),
    /// A county's statistics.
    County(String),
    /// A staff member's worklist.
    Staff {
        /// Where the staff member is.
        place: Place,
        /// The staff member is the principal's own.
        own: bool,
    },
    /// The service itself (verify, access log, accounts) within the principal's scope.
    Service,
    /// The action in general, before the thing's facts are gathered: a role that may never
    /// do it is refused before its input is even read.
    Unplaced,
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// 403: the role or token may never do this.
    Forbidden,
    /// 404: out of scope, answered as if it did not exist.
    NotFound,
}

fn in_scope(scope: &Scope, place: &Place) -> bool {
    match scope {
        Scope::School(s) => place.school.as_deref() == Some(s),
        Scope::County(c) => place.county.as_deref() == Some(c),
    }
}

/// The one decision: may `p` do `action` on `resource`?
pub fn authorize(p: &Principal, action: Action, resource: &Resource) -> Decision {
    use Action as A;
    use Decision::{Allow, Forbidden, NotFound};
    use Role as R;
    if let Some(t) = p.token {
        let ok = match action.needs() {
            TokenScope::Read => true,
            TokenScope::Record => matches!(t, TokenScope::Record | TokenScope::All),
            TokenScope::All => t == TokenScope::All,
        };
        if !ok {
            return Forbidden;
        }
    }
    let role_may = matches!(
        (p.role, action),
        (
            R::Teacher,
            A::RecordCare | A::Amend | A::ReadChild | A::ReadWorklist
        ) | (
            R::Counselor,
            A::RecordCare
                | A::RecordCounseling
                | A::Amend
                | A::ReadChild
                | A::ReadNotes
                | A::ReadWorklist,
        ) | (
            R::SchoolAdmin,
            A::RecordRegistry
                | A::Amend
                | A::ReadChild
                | A::ReadSchool
                | A::ReadWorklist
                | A::ReadScores
                | A::ReadTermReport
                | A::Verify
                | A::ManageAccounts,
        ) | (
            R::Inspector,
            A::ReadChild
                | A::ReadSchool
                | A::ReadWorklist
                | A::ReadScores
                | A::ReadTermReport
                | A::Verify
                | A::ReadAccessLog,
        ) | (R::Bureau, A::ReadTermReport)
    );
    if !role_may {
        return Forbidden;
    }
    match resource {
        Resource::Child { place, paired } => {
            if !in_scope(&p.scope, place) {
                return NotFound;
            }
            match p.role {
                // A teacher sees only the children paired with them.
                R::Teacher if !paired => NotFound,
                _ => Allow,
            }
        }
        Resource::Event {
            place,
            own_staff,
            paired_on_day,
            own_target,
        } => {
            if !in_scope(&p.scope, place) {
                return NotFound;
            }
            if p.staff.is_none() {
                // An account that is no staff member has no actor to record as.
                return Forbidden;
            }
            match (p.role, action) {
                (R::Teacher | R::Counselor, A::RecordCare) if !own_staff || !paired_on_day => {
                    Forbidden
                }
                (R::Counselor, A::RecordCounseling) if !own_staff => Forbidden,
                (R::Teacher | R::Counselor, A::Amend) if !own_target => Forbidden,
                _ => Allow,
            }
        }
        Resource::School(place) => {
            if in_scope(&p.scope, place) {
                Allow
            } else {
                NotFound
            }
        }
        Resource::County(county) => match &p.scope {
            Scope::County(c) if c == county => Allow,
            _ => NotFound,
        },
        Resource::Staff { place, own } => {
            if !in_scope(&p.scope, place) {
                return NotFound;
            }
            match p.role {
                R::Teacher | R::Counselor if !own => NotFound,
                _ => Allow,
            }
        }
        Resource::Service | Resource::Unplaced => Allow,
    }
}
