//! Three `dropship serve` replicas sharing one store (support/replicas.rs), in the mode that
//! runs today (one data dir: SQLite and local files): what one replica writes the others
//! answer, tokens one issues the others accept (one signing key, one public address), and a
//! build sent to one is staged once, its image named by the shared public address.

use crate::support::api::*;
use crate::support::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn replicas_on_one_store_share_apps_tokens_and_builds() {
    let mut r = Replicas::start(3, Backing::SharedDataDir, &["--user", "admin:pw-admin"]);
    assert_eq!(r.replica(2).get("/v3/apps").await.0, 401, "login is on");
    let token = r.login(0, "admin", "pw-admin");
    assert!(
        uaa::claims(&token)["iss"]
            .as_str()
            .unwrap()
            .contains(PUBLIC_ADDRESS),
        "the issuer is the shared public address"
    );
    r.set_token(&token);

    // An app made on A is seen by B and C, whose answers' links name the shared address.
    let app = r.replica(0).app("shared-app").await;
    for i in [1, 2] {
        let (status, v) = r.replica(i).get(&format!("/v3/apps/{app}")).await;
        assert_eq!(
            (status, v["name"].as_str()),
            (200, Some("shared-app")),
            "{v}"
        );
        let href = v["links"]["self"]["href"].as_str().unwrap();
        assert!(
            href.starts_with(&format!("http://{PUBLIC_ADDRESS}/")),
            "{href}"
        );
    }

    // Uploaded to B, built on C, followed on A: staged once.
    let pkg = r.replica(1).package(&app).await;
    let files = counted_app("shared-app-run", 0);
    let files: Vec<F> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice(), 0o644))
        .collect();
    let (status, v) = r.replica(1).upload(&pkg, Some(zip_of(&files)), None).await;
    assert_eq!(status, 200, "{v}");
    r.replica(1).wait_package(&pkg).await;
    let build = r.replica(2).stage(&pkg).await;
    let done = r
        .replica(0)
        .wait_build(&build.guid, Duration::from_secs(120))
        .await;
    assert_eq!(done.state, BuildState::Staged, "{done:?}\n{}", r.logs());
    assert_eq!(r.runs(), ["shared-app-run"], "staged once");
    let by_replica: Vec<usize> = (0..3).map(|i| r.stagings(i)).collect();
    assert_eq!(by_replica.iter().sum::<usize>(), 1, "{by_replica:?}");

    // Its image is named by the shared address; replica A serves it under its own.
    let droplet: cf::Droplet = r
        .replica(0)
        .get_as(&format!("/v3/droplets/{}", done.droplet.unwrap().guid))
        .await;
    let image = droplet.image.expect("an image");
    assert!(image.starts_with(&format!("{PUBLIC_ADDRESS}/")), "{image}");
    let local = r.local(0, &image);
    let (repo, digest) = local.split_once('/').unwrap().1.split_once('@').unwrap();
    let (status, _, _) = r
        .replica(0)
        .text(
            &format!("/v2/{repo}/manifests/{digest}"),
            Some("application/vnd.oci.image.manifest.v1+json"),
        )
        .await;
    assert_eq!(status, 200, "{local}");

    // A replica with its own key (none configured, one made in its own data dir) issues
    // tokens the others refuse, though it names the same issuer.
    let other = Service::start_with(&[
        "--public-address",
        PUBLIC_ADDRESS,
        "--user",
        "admin:pw-admin",
    ]);
    let (status, v) = uaa::password_grant(&other, "admin", "pw-admin");
    assert_eq!(status, 200, "{v}");
    let foreign = v["access_token"].as_str().unwrap();
    assert_eq!(uaa::claims(foreign)["iss"], uaa::claims(&token)["iss"]);
    assert_eq!(uaa::get(&r.replica(2).svc, "/v3/apps", foreign).0, 401);
    assert_eq!(uaa::get(&r.replica(2).svc, "/v3/apps", &token).0, 200);

    // kill -9 of one replica leaves the others answering; it comes back on the same store.
    r.kill9(1);
    assert_eq!(r.replica(2).get(&format!("/v3/apps/{app}")).await.0, 200);
    r.revive(1);
    assert_eq!(r.replica(1).get(&format!("/v3/apps/{app}")).await.0, 200);
}
