//! 32 clients each record 500 events at once: exactly 16,000 new events, seq gapless, every
//! acknowledged event at its acknowledged seq, and the chain verifies — on a store in clear
//! and on one with encryption on (every event sealed by the writer). A worklist page's set
//! of schools is folded by the keeper, and after commits the keeper folds them into the kept
//! worklist versions without a read asking for it.

use std::collections::BTreeSet;

use server::Limits;

use crate::{Keys, Service, talk};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_commits_the_keeper_folds_them_into_the_kept_worklist_versions_unasked() {
    let svc = Service::start_sealed().await;
    let (status, page) = svc
        .call(Some("teacher"), "GET", "/worklist?on=2025-11-20", None)
        .await;
    assert_eq!(status, 200, "{page}");
    // The page registered the teacher's school; the keeper folds it, off the request.
    let kept = svc.plan.kept();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].0, ["sq"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let folded = loop {
        let now = svc.plan.kept();
        if now[0].1 > 0 {
            break now[0].1;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the keeper did not fold the page's set: {now:?}"
        );
        tokio::time::sleep(server::writer::KEEP_EVERY).await;
    };
    for i in 0..3 {
        let body = talk("sq-t03", "sq-c05", &format!("keeper {i}"));
        let (status, text) = svc
            .call(
                Some("teacher"),
                "POST",
                "/api/record/talk_held",
                Some(&body),
            )
            .await;
        assert_eq!(status, 201, "{text}");
    }
    // No read in between: the keeper catches the kept set up (within a few of its intervals).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = svc.plan.kept();
        if now[0].1 == folded + 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the kept versions did not catch up: {now:?}, {folded} before three talks"
        );
        tokio::time::sleep(server::writer::KEEP_EVERY).await;
    }
    svc.stop().await;
}

const CLIENTS: usize = 32;
const EACH: usize = 500;

/// `clients` clients at once, each with its own connection (as separate programs would
/// have), each recording `each` talks in turn as the teacher: `body(c, i)` is client `c`'s
/// `i`-th body. Every answer, client by client in the order sent: status and parsed body.
async fn at_once(
    svc: &Service,
    clients: usize,
    each: usize,
    body: impl Fn(usize, usize) -> String + Clone + Send + 'static,
) -> Vec<Vec<(u16, serde_json::Value)>> {
    let token = svc.token("teacher").to_owned();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = reqwest::Client::new();
        let url = svc.url("/api/record/talk_held");
        let (token, body) = (token.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::with_capacity(each);
            for i in 0..each {
                let resp = client
                    .post(&url)
                    .bearer_auth(&token)
                    .body(body(c, i))
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap();
                let v = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("client {c} request {i}: {e}: {text}"));
                answers.push((status, v));
            }
            answers
        }));
    }
    let mut all = Vec::with_capacity(clients);
    for t in tasks {
        all.push(t.await.unwrap());
    }
    all
}

/// The id and seq of a 201 answer.
fn acked(v: &serde_json::Value) -> (String, u64) {
    (
        v["id"].as_str().unwrap().to_owned(),
        v["seq"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_clients_record_sixteen_thousand_events() {
    thirty_two_clients(Keys::Clear).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_clients_record_sixteen_thousand_sealed_events() {
    thirty_two_clients(Keys::Sealed).await;
}

async fn thirty_two_clients(keys: Keys) {
    let svc = Service::start_on(Limits::default(), keys).await;
    let before = svc.head();
    // The children paired with sq-t03 on 2025-11-20 (sq-c10 dropped out on 2025-11-17).
    let children = [
        "sq-c05", "sq-c06", "sq-c07", "sq-c08", "sq-c09", "sq-c11", "sq-c12",
    ];
    let answers = at_once(&svc, CLIENTS, EACH, move |c, i| {
        let child = children[(c + i) % children.len()];
        talk("sq-t03", child, &format!("client {c} event {i}"))
    })
    .await;
    let mut acked_all = Vec::new();
    for (c, client) in answers.iter().enumerate() {
        for (i, (status, v)) in client.iter().enumerate() {
            assert_eq!(*status, 201, "client {c} event {i}: {v}");
            acked_all.push(acked(v));
        }
    }
    let acked = acked_all;
    svc_checks(&svc, before, &acked, keys);
    svc.stop().await;
}

fn svc_checks(svc: &Service, before: u64, acked: &[(String, u64)], keys: Keys) {
    let total = (CLIENTS * EACH) as u64;
    assert_eq!(acked.len() as u64, total);
    assert_eq!(svc.head(), before + total, "exactly 16,000 new events");
    // Every acknowledged event is where its answer said, and the seqs are exactly the new ones.
    let seqs: BTreeSet<u64> = acked.iter().map(|(_, s)| *s).collect();
    let expected: BTreeSet<u64> = (before + 1..=before + total).collect();
    assert_eq!(seqs, expected, "seq gapless, each acknowledged once");
    for (id, seq) in acked {
        let env = svc.store.get(*seq).unwrap().unwrap();
        assert_eq!(&env.id, id);
        assert_eq!(
            env.actor, "sq-t03",
            "the actor is the logged-in staff member"
        );
        // A talk's summary is personal: sealed by the writer when encryption is on.
        assert_eq!(env.sealed.is_some(), keys == Keys::Sealed, "{id}");
    }
    let v = svc.store.verify().unwrap();
    assert_eq!(v.events, before + total);
}

/// Records decided in the writer's batches: 16 clients send at once, each request in turn a
/// talk with a paired child (allowed), a talk with a child the teacher is not paired with
/// (403), one naming another staff member as actor (400, the field named) and an invalid one
/// (400). Batches then hold all four kinds side by side; exactly the allowed ones are
/// appended, each at the seq its answer gave, and nothing of the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_records_in_a_batch_leave_nothing_and_the_others_are_appended() {
    let svc = Service::start().await;
    let before = svc.head();
    let (clients, each) = (16, 40);
    // Request `i` of client `c`: its body, the status it must get, the field an error names.
    let request = |c: usize, i: usize| {
        let tag = format!("mixed {c} {i}");
        match (c + i) % 4 {
            0 => (talk("sq-t03", "sq-c05", &tag), 201, None),
            1 => (talk("sq-t03", "sq-c01", &tag), 403, None),
            2 => (
                talk("sq-t03", "sq-c06", &tag).replacen('{', r#"{"actor":"sq-t02","#, 1),
                400,
                Some("actor"),
            ),
            _ => (
                talk("sq-t03", "sq-c07", &tag).replace(r#""ok""#, r#""fine""#),
                400,
                Some("mood"),
            ),
        }
    };
    let answers = at_once(&svc, clients, each, move |c, i| request(c, i).0).await;
    let mut acked_all = Vec::new();
    for (c, client) in answers.iter().enumerate() {
        for (i, (status, v)) in client.iter().enumerate() {
            let (_, want, field) = request(c, i);
            assert_eq!(*status, want, "client {c} request {i}: {v}");
            if let Some(field) = field {
                assert_eq!(v["errors"][0]["field"], field, "{v}");
            }
            if *status == 201 {
                acked_all.push(acked(v));
            }
        }
    }
    let acked = acked_all;
    assert_eq!(acked.len(), clients * each / 4);
    assert_eq!(
        svc.head(),
        before + acked.len() as u64,
        "only the allowed are appended"
    );
    let seqs: BTreeSet<u64> = acked.iter().map(|(_, s)| *s).collect();
    let expected: BTreeSet<u64> = (before + 1..=before + acked.len() as u64).collect();
    assert_eq!(seqs, expected);
    for (id, seq) in &acked {
        let env = svc.store.get(*seq).unwrap().unwrap();
        assert_eq!(&env.id, id);
        assert!(matches!(&env.event, events::Event::TalkHeld { child, .. } if child == "sq-c05"));
    }
    assert_eq!(
        svc.store.verify().unwrap().events,
        before + acked.len() as u64
    );
    svc.stop().await;
}

/// The same talks sent by 16 clients at once, in the same order: each is appended once, and
/// of its 16 requests exactly one is answered 201 and the others "already present" — whether
/// its twin was earlier in the same batch or in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_talk_sent_at_once_is_appended_once_and_answered_present_to_the_rest() {
    let svc = Service::start().await;
    let before = svc.head();
    let (clients, talks) = (16, 60);
    let answers = at_once(&svc, clients, talks, |_, i| {
        talk("sq-t03", "sq-c05", &format!("twin {i}"))
    })
    .await;
    let mut created = vec![0usize; talks];
    let mut present = vec![0usize; talks];
    for client in &answers {
        for (i, (status, v)) in client.iter().enumerate() {
            match status {
                201 => created[i] += 1,
                200 => {
                    assert_eq!(v["already_present"], true, "{v}");
                    present[i] += 1;
                }
                other => panic!("talk {i}: {other} {v}"),
            }
        }
    }
    assert_eq!(created, vec![1; talks], "each talk created once");
    assert_eq!(present, vec![clients - 1; talks]);
    assert_eq!(svc.head(), before + talks as u64);
    assert_eq!(svc.store.verify().unwrap().events, before + talks as u64);
    svc.stop().await;
}

/// A talk too large for the log — on a store with encryption on, whose sealed fields take more
/// room than in clear: validation (which measures the event in clear) passes it, and the store
/// refuses the sealed envelope, so its whole batch fails — sent by 8 clients at once, again
/// and again: no request of it is ever answered as a success. A twin later in the same batch
/// was validated as "already present" (its twin was accepted before it); once the append
/// failed, nothing of the batch is in the log, and its answer says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_batch_answers_no_twin_of_it_as_present() {
    let svc = Service::start_sealed().await;
    let before = svc.head();
    let huge = talk("sq-t03", "sq-c05", &"谈话".repeat(2_676));
    for client in at_once(&svc, 8, 30, move |_, _| huge.clone()).await {
        for (status, v) in client {
            assert_eq!(status, 400, "{v}");
            assert!(v.to_string().contains("more than 16384"), "{v}");
        }
    }
    assert_eq!(svc.head(), before, "nothing appended");
    // A talk of ordinary size goes through after them.
    let (status, text) = svc
        .call(
            Some("teacher"),
            "POST",
            "/api/record/talk_held",
            Some(&talk("sq-t03", "sq-c05", "after the refused ones")),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    svc.stop().await;
}
