//! Docker credential helpers: `docker-credential-<NAME> get` with the server address on stdin
//! answers `{"ServerURL":..,"Username":..,"Secret":..}`. A helper gets a deadline; what it
//! prints on failure is shown (its first line, shortened), what it prints on success never is.

use super::auth::{AuthError, Credentials};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long a helper may take (cloud helpers may fetch a token over the network).
pub const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret: String,
}

/// The message helpers print when they hold nothing for the server: not an error, anonymous.
fn is_not_found(output: &str) -> bool {
    output
        .to_ascii_lowercase()
        .contains("credentials not found")
}

/// A helper's own words for the error line: its first non-empty line, at most 200 characters.
fn first_line(stderr: &[u8], stdout: &[u8]) -> String {
    let pick = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| l.chars().take(200).collect::<String>())
    };
    pick(stderr)
        .or_else(|| pick(stdout))
        .unwrap_or_else(|| "no output".to_string())
}

/// Runs `docker-credential-<helper> get` for `server`; `None` when it has no credentials.
pub async fn get(
    helper: &str,
    server: &str,
    registry: &str,
    timeout: Duration,
) -> Result<Option<Credentials>, AuthError> {
    let program = format!("docker-credential-{helper}");
    let fail = |detail: String| AuthError::Helper {
        helper: program.clone(),
        registry: registry.to_string(),
        detail,
    };
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => fail("not found on PATH".to_string()),
            _ => fail(format!("cannot run it: {e}")),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its exit status below.
        let _ = stdin.write_all(server.as_bytes()).await;
    }
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(r) => r.map_err(|e| fail(format!("cannot run it: {e}")))?,
        Err(_) => {
            return Err(fail(format!(
                "no answer within {}s (killed)",
                timeout.as_secs()
            )))
        }
    };
    if !out.status.success() {
        if is_not_found(&String::from_utf8_lossy(&out.stdout))
            || is_not_found(&String::from_utf8_lossy(&out.stderr))
        {
            return Ok(None);
        }
        let status = match out.status.code() {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        };
        return Err(fail(format!(
            "{status}: {}",
            first_line(&out.stderr, &out.stdout)
        )));
    }
    // The answer holds the secret: never quote it, not even in a parse error.
    let answer: Answer = serde_json::from_slice(&out.stdout).map_err(|_| {
        fail("its answer is not the JSON {\"Username\",\"Secret\"} object".to_string())
    })?;
    Ok(match (answer.username.as_str(), answer.secret) {
        (_, secret) if secret.is_empty() => None,
        ("<token>", secret) => Some(Credentials::IdentityToken(secret)),
        ("", _) => return Err(fail("its answer has a Secret but no Username".to_string())),
        (user, password) => Some(Credentials::Basic {
            user: user.to_string(),
            password,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_lines_are_short_and_from_the_helper() {
        assert_eq!(first_line(b"\n  boom\nmore", b"x"), "boom");
        assert_eq!(first_line(b"", b"out\n"), "out");
        assert_eq!(first_line(b"", b""), "no output");
        assert_eq!(first_line(&[b'a'; 500], b"").len(), 200);
        assert!(is_not_found("credentials not found in native keychain"));
    }

    #[tokio::test]
    async fn a_missing_helper_is_named() {
        let e = get(
            "surely-absent-xyz",
            "r.example.com",
            "r.example.com",
            TIMEOUT,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("docker-credential-surely-absent-xyz")
                && e.contains("r.example.com")
                && e.contains("not found on PATH"),
            "{e}"
        );
    }
}
