use super::*;

fn all_kinds() -> Vec<FailureKind> {
    let mut all: Vec<FailureKind> = NAMED.iter().map(|(k, _)| *k).collect();
    all.extend(Phase::ALL.map(FailureKind::LimitExceeded));
    all
}

#[test]
fn exit_codes_and_cf_names_follow_cloud_foundry() {
    use FailureKind::*;
    let cases = [
        (NoAppDetected, 222, "NoAppDetectedError"),
        (CompileFailed, 223, "BuildpackCompileFailed"),
        (ReleaseFailed, 224, "BuildpackReleaseFailed"),
        (SupplyFailed, 225, "StagingError"),
        (FinalizeFailed, 226, "StagingError"),
        (TimeExpired, 124, "StagingTimeExpired"),
        (LimitExceeded(Phase::Compile), 223, "StagingError"),
        (LimitExceeded(Phase::Release), 224, "StagingError"),
        (LimitExceeded(Phase::Supply), 225, "StagingError"),
        (LimitExceeded(Phase::Finalize), 226, "StagingError"),
        (LimitExceeded(Phase::Detect), 1, "StagingError"),
        (Interrupted, 130, "StagingError"),
        (Staging, 1, "StagingError"),
        (Registry, 1, "StagingError"),
        (Other, 1, "StagingError"),
    ];
    for (kind, code, name) in cases {
        assert_eq!((kind.exit_code(), kind.cf_name()), (code, name), "{kind:?}");
    }
}

#[test]
fn every_kind_round_trips_through_its_identifier_and_json() {
    let all = all_kinds();
    let ids: std::collections::HashSet<String> = all.iter().map(|k| k.to_string()).collect();
    assert_eq!(ids.len(), all.len(), "identifiers are distinct");
    for k in all {
        assert_eq!(k.to_string().parse::<FailureKind>(), Ok(k));
        let json = serde_json::to_value(k).unwrap();
        assert_eq!(serde_json::from_value::<FailureKind>(json).unwrap(), k);
    }
    assert_eq!(
        FailureKind::LimitExceeded(Phase::Supply).to_string(),
        "limit_exceeded:supply"
    );
}

#[test]
fn unknown_identifiers_are_errors_not_guesses() {
    for s in [
        "",
        "BuildpackCompileFailed",
        "limit_exceeded:",
        "limit_exceeded:build",
        "COMPILE_FAILED",
    ] {
        assert_eq!(s.parse::<FailureKind>(), Err(UnknownKind(s.to_string())));
    }
    let e = serde_json::from_str::<FailureKind>("\"nope\"").unwrap_err();
    assert!(
        e.to_string().contains("unknown failure kind \"nope\""),
        "{e}"
    );
}

#[test]
fn the_cf_error_is_the_name_then_the_message() {
    let f = BuildFailure::new(FailureKind::NoAppDetected, "None detected");
    assert_eq!(f.cf_error(), "NoAppDetectedError - None detected");
}
