//! The checkpoint writer's two passes: rows since the previous checkpoint are checked first
//! without the chain head, then under it only from the last row that pass reached, and only while
//! the chain still holds that row unchanged. A row altered in between is still caught, by the
//! verification against the checkpoint signed over it.

use crate::audit::{bypass, describe, seed, verify};
use crate::both_backends;
use crate::common::*;
use regassist::audit::{Mode, Outcome};

/// Seeds the chain (rows 1–7), signs it, and appends rows 8 and 9 after the checkpoint.
async fn signed_then_two_more(app: &TestApp) -> String {
    let (auditor, owner, id) = seed(app).await;
    match app.state.audit.checkpoint(Mode::Extend).await.unwrap() {
        Outcome::Written(cp) => assert_eq!(cp.head_seq, 7),
        other => panic!("{other:?}"),
    }
    describe(app, &owner, id, &["after 0", "after 1"]).await;
    auditor
}

fn assert_refused(outcome: &Outcome, needle: &str) {
    match outcome {
        Outcome::Refused(why) => assert!(why.contains(needle), "{why}"),
        other => panic!("expected a refusal mentioning {needle:?}, got {other:?}"),
    }
}

both_backends!(
    a_row_altered_after_the_checkpoint_is_refused,
    &[],
    |app: TestApp| async move {
        signed_then_two_more(&app).await;
        bypass(
            &app.state.db,
            "UPDATE audit_events SET reason = 'altered' WHERE seq = 8",
        )
        .await;
        assert_eq!(app.state.audit.check_ahead(Mode::Extend).await, None);
        assert_refused(
            &app.state.audit.checkpoint(Mode::Extend).await.unwrap(),
            "seq 8 does not verify",
        );
    }
);

both_backends!(
    the_pass_under_the_head_checks_again_when_the_last_row_checked_changed,
    &[],
    |app: TestApp| async move {
        signed_then_two_more(&app).await;
        let ahead = app.state.audit.check_ahead(Mode::Extend).await;
        assert_eq!(ahead.as_ref().map(|a| a.to_seq()), Some(9));
        bypass(
            &app.state.db,
            "UPDATE audit_events SET hash = 'forged' WHERE seq = 9",
        )
        .await;
        assert_refused(
            &app.state
                .audit
                .checkpoint_from(Mode::Extend, ahead)
                .await
                .unwrap(),
            "seq 9 does not verify",
        );
    }
);

both_backends!(
    a_row_altered_between_the_passes_fails_verification_against_the_new_checkpoint,
    &[],
    |app: TestApp| async move {
        let auditor = signed_then_two_more(&app).await;
        let ahead = app.state.audit.check_ahead(Mode::Extend).await;
        assert!(ahead.is_some());
        bypass(
            &app.state.db,
            "UPDATE audit_events SET reason = 'altered' WHERE seq = 8",
        )
        .await;
        // Under the head only what came after row 9 is read: the checkpoint is signed...
        match app
            .state
            .audit
            .checkpoint_from(Mode::Extend, ahead)
            .await
            .unwrap()
        {
            Outcome::Written(cp) => assert_eq!(cp.head_seq, 9),
            other => panic!("{other:?}"),
        }
        // ...over a row that no longer hashes to what its successor links to: the altered row
        // shows as it would had it been altered the moment after the signature.
        let v = verify(&app, &auditor).await;
        assert_eq!(v["is_valid"], false, "{v}");
        assert_eq!(v["first_invalid_seq"], 8, "{v}");
        assert_eq!(v["checkpoint_seq"], 9, "{v}");
    }
);
