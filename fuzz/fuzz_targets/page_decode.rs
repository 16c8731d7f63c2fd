//! Arbitrary bytes as a page of `GET /v3/enterprise/sessions`. The decoder must never panic; a
//! page it accepts must go through the diff, and through the snapshot (JSON in sled) and back,
//! exactly as the poller uses it.

#![no_main]

use std::collections::HashSet;

use devin_notify::model::{Page, Session};
use devin_notify::diff::diff;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(page) = Page::decode(data) else {
        return;
    };
    let mut previous: Option<&Session> = None;
    for session in &page.items {
        // Against the previous item of the page, as if it were this session's snapshot.
        let mut other = previous.cloned();
        if let Some(o) = other.as_mut() {
            o.session_id = session.session_id.clone();
        }
        for old in [None, other.as_ref()] {
            let events = diff(old, session);
            let ids: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(ids.len(), events.len(), "ids repeat within one diff");
            assert_eq!(events, diff(old, session), "the diff is deterministic");
        }
        assert!(
            diff(Some(session), session).is_empty(),
            "no change, no event"
        );

        // The snapshot the poller stores must decode to the same session, or the next change
        // would be lost ("unreadable snapshot replaced").
        let snapshot = serde_json::to_vec(session).expect("a listed session serializes");
        let back: Session = serde_json::from_slice(&snapshot).expect("its snapshot decodes");
        assert_eq!(
            &back, session,
            "the snapshot round trip changes the session"
        );
        assert!(diff(Some(&back), session).is_empty());
        assert_eq!(serde_json::to_vec(&back).expect("serializes"), snapshot);

        previous = Some(session);
    }
});
