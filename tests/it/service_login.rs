//! The built-in login of `dropship serve` (UAA's `/oauth/token`, JWTs) and an external issuer,
//! through the binary and plain HTTP.

use crate::support::uaa::*;
use crate::support::{tempdir, Service};
use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;

#[test]
fn password_grant_gives_jwts_the_api_and_registry_accept() {
    let tmp = tempdir();
    let conf = config_file(
        tmp.path(),
        &format!(
            "[users]\nbob = {:?}\n[clients]\nci-bot = \"cs-1\"\n",
            argon2_hash("bob-pw-9")
        ),
    );
    let mut svc = Service::start_with(&[
        "--config",
        &conf,
        "--user",
        "alice:pw-alice-1",
        "--token",
        "static-tok",
    ]);

    let (status, tok) = password_grant(&svc, "alice", "pw-alice-1");
    assert_eq!(status, 200, "{tok}");
    assert_eq!(tok["token_type"], "bearer");
    assert!(
        tok["expires_in"].as_u64().unwrap() > 0 && tok["jti"].is_string(),
        "{tok}"
    );
    assert!(
        tok["scope"]
            .as_str()
            .unwrap()
            .contains("cloud_controller.write"),
        "{tok}"
    );
    let access = tok["access_token"].as_str().unwrap().to_string();
    let c = claims(&access);
    assert_eq!(
        (c["user_name"].as_str(), c["origin"].as_str()),
        (Some("alice"), Some("uaa"))
    );
    assert_eq!(
        (c["client_id"].as_str(), c["cid"].as_str()),
        (Some("cf"), Some("cf"))
    );
    assert!(c["user_id"].as_str().is_some_and(|u| u.len() == 36), "{c}");
    assert!(c["exp"].as_u64().unwrap() > c["iat"].as_u64().unwrap() && c["jti"].is_string());
    assert_eq!(c["iss"], format!("{}/oauth/token", svc.base()));
    assert!(tok["refresh_token"].is_string());

    // The argon2-hashed user of the file; wrong passwords and unknown users look the same.
    assert_eq!(password_grant(&svc, "bob", "bob-pw-9").0, 200);
    let wrong = password_grant(&svc, "alice", "pw-alice-2");
    let unknown = password_grant(&svc, "mallory", "pw-alice-1");
    assert_eq!(wrong.0, 401, "{wrong:?}");
    assert_eq!(wrong.1["error"], "unauthorized");
    assert_eq!(
        wrong, unknown,
        "an unknown user is told apart from a wrong password"
    );
    let cc = request(
        &svc,
        "POST",
        "/oauth/token",
        &[FORM, CF_CLIENT],
        "grant_type=client_credentials",
    );
    assert_eq!(
        (cc.0, cc.1["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{cc:?}"
    );
    let no_client = request(&svc, "POST", "/oauth/token", &[FORM], "grant_type=password");
    assert_eq!(no_client.0, 401, "{no_client:?}");
    let odd = request(
        &svc,
        "POST",
        "/oauth/token",
        &[FORM, CF_CLIENT],
        "grant_type=implicit",
    );
    assert_eq!(
        (odd.0, odd.1["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let huge = format!(
        "grant_type=password&username=alice&password={}",
        "x".repeat(100 << 10)
    );
    let huge = request(&svc, "POST", "/oauth/token", &[FORM, CF_CLIENT], &huge);
    assert_eq!(huge.0, 413, "{huge:?}");
    // A configured client, as the cf CLI sends it (form fields): no user, no refresh token.
    let body = "grant_type=client_credentials&client_id=ci-bot&client_secret=cs-1";
    let (status, ci) = request(&svc, "POST", "/oauth/token", &[FORM], body);
    assert_eq!(status, 200, "{ci}");
    assert!(
        ci["refresh_token"].is_null()
            && claims(ci["access_token"].as_str().unwrap())["user_name"].is_null()
    );
    assert_eq!(
        get(&svc, "/v3/apps", ci["access_token"].as_str().unwrap()).0,
        200
    );
    let body = "grant_type=client_credentials&client_id=ci-bot&client_secret=cs-2";
    assert_eq!(request(&svc, "POST", "/oauth/token", &[FORM], body).0, 401);

    // The API: the JWT, the static token; nothing, a tampered JWT.
    assert_eq!(get(&svc, "/v3/apps", &access).0, 200);
    assert_eq!(get(&svc, "/v3/apps", "static-tok").0, 200);
    assert_cf_error(
        &request(&svc, "GET", "/v3/apps", &[], ""),
        10002,
        "CF-NotAuthenticated",
    );
    assert_cf_error(
        &get(&svc, "/v3/apps", &tampered(&access)),
        1000,
        "CF-InvalidAuthToken",
    );
    let refresh = tok["refresh_token"].as_str().unwrap();
    assert_cf_error(&get(&svc, "/v3/apps", refresh), 1000, "CF-InvalidAuthToken");

    // The registry: Basic with a user's password, the JWT as a bearer.
    let basic = base64::engine::general_purpose::STANDARD.encode("alice:pw-alice-1");
    let reg = request(
        &svc,
        "GET",
        "/v2/",
        &[&format!("Authorization: Basic {basic}")],
        "",
    );
    assert_eq!(reg.0, 200, "{reg:?}");
    assert_eq!(get(&svc, "/v2/", &access).0, 200);
    let bad = base64::engine::general_purpose::STANDARD.encode("alice:nope");
    let reg = request(
        &svc,
        "GET",
        "/v2/",
        &[&format!("Authorization: Basic {bad}")],
        "",
    );
    assert_eq!(reg.0, 401);

    // Discovery: public, pointing at the login; the JWT's key is published.
    let (_, root) = request(&svc, "GET", "/", &[], "");
    assert_eq!(root["links"]["login"]["href"], svc.base());
    assert_eq!(root["links"]["uaa"]["href"], svc.base());
    let (status, login) = request(&svc, "GET", "/login", &[], "");
    assert_eq!(status, 200);
    assert_eq!(
        login["prompts"]["password"],
        json!(["password", "Password"])
    );
    let (_, keys) = request(&svc, "GET", "/token_keys", &[], "");
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(keys["keys"][0]["kid"], header["kid"], "{keys}");
    assert_eq!(header["alg"], "ES256");

    // The key is kept in the data dir (0600): the token outlives a restart.
    use std::os::unix::fs::PermissionsExt;
    let key = svc.data_dir().join("token-signing-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    svc.kill9_and_restart();
    assert_eq!(get(&svc, "/v3/apps", &access).0, 200, "{}", svc.log());
    assert!(!svc.log().contains("pw-alice-1") && !svc.log().contains(&access));
}

#[test]
fn expired_tokens_get_code_1000_and_the_refresh_grant_renews_them() {
    let tmp = tempdir();
    let conf = config_file(
        tmp.path(),
        "[auth]\ntoken_ttl = \"2s\"\n[users]\ncarol = \"pw-carol\"\n",
    );
    let svc = Service::start_with(&["--config", &conf]);
    let (status, tok) = password_grant(&svc, "carol", "pw-carol");
    assert_eq!(status, 200, "{tok}");
    let access = tok["access_token"].as_str().unwrap();
    assert_eq!(get(&svc, "/v3/apps", access).0, 200);
    std::thread::sleep(Duration::from_millis(3500));
    assert_cf_error(&get(&svc, "/v3/apps", access), 1000, "CF-InvalidAuthToken");

    let refresh = tok["refresh_token"].as_str().unwrap();
    let body = format!("grant_type=refresh_token&refresh_token={refresh}");
    let (status, renewed) = request(&svc, "POST", "/oauth/token", &[FORM, CF_CLIENT], &body);
    assert_eq!(status, 200, "{renewed}");
    let fresh = renewed["access_token"].as_str().unwrap();
    assert_ne!(fresh, access);
    assert_eq!(get(&svc, "/v3/apps", fresh).0, 200);
    // An access token is not a refresh token.
    let body = format!("grant_type=refresh_token&refresh_token={fresh}");
    let (status, refused) = request(&svc, "POST", "/oauth/token", &[FORM, CF_CLIENT], &body);
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("invalid_token"))
    );
}

/// A JWK of P-256 as SubjectPublicKeyInfo PEM (the DER prefix is fixed for that curve).
fn ec_jwk_pem(jwk: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut der = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
    ];
    for k in ["x", "y"] {
        der.extend(b64.decode(jwk[k].as_str().unwrap()).unwrap());
    }
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
}

#[test]
fn an_external_issuers_tokens_are_accepted_and_its_login_is_linked() {
    // The issuer: another dropship's built-in login, its key published at /token_keys.
    let issuer = Service::start_with(&["--user", "erin:pw-erin"]);
    let (_, keys) = request(&issuer, "GET", "/token_keys", &[], "");
    let tmp = tempdir();
    let pem = tmp.path().join("issuer.pem");
    std::fs::write(&pem, ec_jwk_pem(&keys["keys"][0])).unwrap();
    // Configured as its base URL; its tokens' `iss` is UAA's `BASE/oauth/token`.
    let conf = format!(
        "[auth]\nissuer = \"{}/\"\npublic_key = {:?}\n",
        issuer.base(),
        pem.to_str().unwrap()
    );
    let svc = Service::start_with(&["--config", &config_file(tmp.path(), &conf)]);

    let (_, root) = request(&svc, "GET", "/", &[], "");
    assert_eq!(root["links"]["login"]["href"], issuer.base(), "{root}");
    assert_eq!(root["links"]["uaa"]["href"], issuer.base(), "{root}");
    assert_eq!(
        password_grant(&svc, "erin", "pw-erin").0,
        404,
        "no login of its own"
    );
    let (status, tok) = password_grant(&issuer, "erin", "pw-erin");
    assert_eq!(status, 200, "{tok}");
    let access = tok["access_token"].as_str().unwrap();
    assert_eq!(get(&svc, "/v3/apps", access).0, 200, "{}", svc.log());
    assert_cf_error(
        &get(&svc, "/v3/apps", &tampered(access)),
        1000,
        "CF-InvalidAuthToken",
    );
    assert_cf_error(
        &request(&svc, "GET", "/v3/apps", &[], ""),
        10002,
        "CF-NotAuthenticated",
    );
}
