//! N `dropship serve` replicas sharing one store, for issue 12's acceptance tests.
//!
//! - [`Backing::PostgresS3`]: a throw-away PostgreSQL (`postgres.rs`) and a moto S3 bucket
//!   (`s3.rs`) made for the test; every replica has its own data dir (what stays per replica:
//!   stack cache, work dir, local copies) and gets `--database URL`, `--blob-store
//!   s3://BUCKET/dropship` and the AWS_* variables.
//! - [`Backing::SharedDataDir`]: what runs today: every replica on one `--data-dir` (SQLite and
//!   local files). Each still queues and stages the builds it accepted in its own memory.
//!
//! Replicas share one public address, as behind a load balancer: [`PUBLIC_ADDRESS`], a name
//! under RFC 2606's `.test` that resolves nowhere, so that nothing reaches a replica through it
//! by chance. Image names, `links` and the tokens' issuer embed it; [`Replicas::local`]
//! rewrites it to replica i's own `127.0.0.1:PORT` (to pull an image from replica i, say).
//! They share a token signing key (`--signing-key`) and a buildpacks dir holding one
//! buildpack, `counted` (support/counted.rs): it stages apps made by [`counted_app`] and
//! appends each run's name to a shared file ([`Replicas::runs`]). Replicas stage with
//! `--sandbox none` so that the buildpack reaches that file (bubblewrap shows it nothing of
//! the host's); the sandbox is tested elsewhere.

use super::api::Api;
pub use super::counted::counted_app;
use super::counted::counted_buildpack;
use super::*;

/// What every replica is told its public address is.
pub const PUBLIC_ADDRESS: &str = "dropship-replicas.test:8080";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// One `--data-dir` for all: SQLite and local files (works today).
    SharedDataDir,
    /// PostgreSQL and S3 (moto), a data dir per replica (once issue 12's flags exist).
    PostgresS3,
}

pub struct Replicas {
    apis: Vec<Api>,
    pub backing: Backing,
    pub postgres: Option<Postgres>,
    pub s3: Option<S3Server>,
    /// `--database` (PostgresS3 only).
    pub database: Option<String>,
    /// Holds `buildpacks/`, `runs/runs.log`, `signing-key.pem` and (SharedDataDir) `data/`.
    shared: tempfile::TempDir,
}

impl Replicas {
    /// `n` replicas on `backing`, each started with `args` added (e.g. `--user admin:pw`,
    /// `--build-lease 5s`); returns once all answer `/healthz`. Replica 0 starts first (it
    /// makes the schema and the stack), the others then at once.
    pub fn start(n: usize, backing: Backing, args: &[&str]) -> Replicas {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let shared = tempdir();
        counted_buildpack(
            &shared.path().join("buildpacks"),
            &shared.path().join("runs"),
        );
        signing_key(&shared.path().join("signing-key.pem"));
        let (postgres, s3) = match backing {
            Backing::SharedDataDir => (None, None),
            Backing::PostgresS3 => (Some(Postgres::start()), Some(S3Server::start())),
        };
        let database = postgres.as_ref().map(|pg| pg.database("dropship"));
        let mut r = Replicas {
            apis: Vec::new(),
            backing,
            postgres,
            s3,
            database,
            shared,
        };
        let argv = r.argv(args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        r.apis.push(r.spawn(&argv));
        let rest: Vec<Api> = std::thread::scope(|s| {
            let r = &r;
            let argv = &argv;
            let started: Vec<_> = (1..n).map(|_| s.spawn(move || r.spawn(argv))).collect();
            started.into_iter().map(|t| t.join().unwrap()).collect()
        });
        r.apis.extend(rest);
        r
    }

    /// The arguments every replica gets: the shared ones, the backing's, then `extra`.
    fn argv(&self, extra: &[&str]) -> Vec<String> {
        let path = |rel: &str| self.shared.path().join(rel).display().to_string();
        let mut a: Vec<String> = vec![
            "--public-address".into(),
            PUBLIC_ADDRESS.into(),
            "--buildpacks-dir".into(),
            path("buildpacks"),
            "--signing-key".into(),
            path("signing-key.pem"),
            "--sandbox".into(),
            "none".into(),
        ];
        if let (Some(db), Some(s3)) = (&self.database, &self.s3) {
            a.extend(["--database".into(), db.clone()]);
            let store = format!("s3://{}/dropship", s3.bucket);
            a.extend(["--blob-store".into(), store]);
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    fn spawn(&self, argv: &[&str]) -> Api {
        let dir = tempdir();
        let data = match self.backing {
            Backing::SharedDataDir => self.shared.path().join("data"),
            Backing::PostgresS3 => dir.path().join("data"),
        };
        let env = self.s3.as_ref().map(|s| s.env()).unwrap_or_default();
        Api::on(Service::start_env(dir, data, argv, &env))
    }

    pub fn len(&self) -> usize {
        self.apis.len()
    }

    /// Replica `i`'s client (its `svc` is the process: port, log, pid).
    pub fn replica(&self, i: usize) -> &Api {
        &self.apis[i]
    }

    /// Replica `i`'s client, to set its `token`.
    pub fn replica_mut(&mut self, i: usize) -> &mut Api {
        &mut self.apis[i]
    }

    /// Every replica's client uses `token` from now on.
    pub fn set_token(&mut self, token: &str) {
        for api in &mut self.apis {
            api.token = Some(token.to_string());
        }
    }

    /// A token from replica `i`'s built-in login (password grant, as the cf CLI asks).
    pub fn login(&self, i: usize, user: &str, password: &str) -> String {
        let (status, v) = uaa::password_grant(&self.apis[i].svc, user, password);
        assert_eq!(status, 200, "login on replica {i}: {v}");
        v["access_token"]
            .as_str()
            .expect("an access token")
            .to_string()
    }

    /// The signing key file every replica is given (`--signing-key`).
    pub fn signing_key(&self) -> PathBuf {
        self.shared.path().join("signing-key.pem")
    }

    /// App `name` made on replica `a`, a package of [`counted_app`]`(run, seconds)` made and
    /// uploaded on replica `b` and READY: `(app, package)`.
    pub async fn counted_package(
        &self,
        a: usize,
        b: usize,
        name: &str,
        run: &str,
        seconds: u32,
    ) -> (String, String) {
        use super::api::{zip_of, PackageState, F};
        use super::client::Client;
        let app = self.apis[a].app(name).await;
        let pkg = self.apis[b].package(&app).await;
        let files = counted_app(run, seconds);
        let files: Vec<F> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice(), 0o644))
            .collect();
        let (status, v) = self.apis[b].upload(&pkg, Some(zip_of(&files)), None).await;
        assert_eq!(status, 200, "upload on replica {b}: {v}");
        let p = self.apis[b].wait_package(&pkg).await;
        assert_eq!(p.state, PackageState::Ready, "{p:?}");
        (app, pkg)
    }

    /// kill -9 of replica `i` and what it started (its builds' buildpacks too).
    pub fn kill9(&mut self, i: usize) {
        self.apis[i].svc.kill9();
    }

    /// SIGTERM to replica `i`; its exit status and how long it took (a minute at most).
    pub fn terminate(&mut self, i: usize) -> (std::process::ExitStatus, Duration) {
        self.apis[i].svc.terminate()
    }

    /// Starts replica `i` again (after `kill9` or `terminate`), same port and data dir.
    pub fn revive(&mut self, i: usize) {
        self.apis[i].svc.restart();
    }

    fn postgres(&mut self) -> &mut Postgres {
        self.postgres
            .as_mut()
            .expect("no database server: SharedDataDir replicas use SQLite")
    }

    /// Stops PostgreSQL (fast shutdown: the replicas' connections are cut).
    pub fn stop_database(&mut self) {
        self.postgres().stop();
    }

    /// Starts PostgreSQL again on its port and data (after `stop_database`).
    pub fn start_database(&mut self) {
        self.postgres().restart();
    }

    /// Stops and starts PostgreSQL at once.
    pub fn restart_database(&mut self) {
        self.postgres().restart();
    }

    /// The names of the `counted` buildpack's runs so far (the text of each app's `COUNTED`
    /// file), one per run, in the order they started.
    pub fn runs(&self) -> Vec<String> {
        let log = self.shared.path().join("runs/runs.log");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    /// How many builds replica `i` started staging (its log's `staging started` events, over
    /// its restarts too).
    pub fn stagings(&self, i: usize) -> usize {
        self.apis[i].svc.log().matches("staging started").count()
    }

    /// The replicas whose log says they started staging `build` (the one that claimed it;
    /// more than one when it was taken over).
    pub fn staging_on(&self, build: &str) -> Vec<usize> {
        let started = |log: String| {
            log.lines()
                .any(|l| l.contains(build) && l.contains("staging started"))
        };
        (0..self.apis.len())
            .filter(|&i| started(self.apis[i].svc.log()))
            .collect()
    }

    /// `text` (an image name, a link) with the shared public address replaced by replica
    /// `i`'s own address.
    pub fn local(&self, i: usize, text: &str) -> String {
        text.replace(
            PUBLIC_ADDRESS,
            &format!("127.0.0.1:{}", self.apis[i].svc.port),
        )
    }

    /// Every replica's log, headed by its number, for a failing assertion's message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, api) in self.apis.iter().enumerate() {
            out.push_str(&format!("--- replica {i} (port {})\n", api.svc.port));
            out.push_str(&api.svc.log());
        }
        out
    }
}

/// A PKCS#8 P-256 key in PEM, as `openssl genpkey -algorithm EC -pkeyopt
/// ec_paramgen_curve:P-256` writes one.
fn signing_key(path: &Path) {
    use base64::Engine;
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    std::fs::write(
        path,
        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"),
    )
    .unwrap();
}
