#!/usr/bin/env python3
"""dropship serve through PyPI's cloudfoundry-client, a Cloud Foundry client nobody here wrote.

Run by tests/it/cf_client.rs in a virtualenv with requirements.txt, in phases (the test runs
the staged image with podman between `stage` and `delete`):

    acceptance.py stage    discovery, login, app, package, upload, build, current droplet,
                           start, paged lists, processes and stats, scale, apply_manifest with a
                           worker process, a tampered token refreshed; writes $CF_STATE (JSON)
    acceptance.py delete   deletes the app (waiting for its job); reads $CF_STATE
    acceptance.py expiry   logs in, waits for the access token to expire, reads again

Environment: CF_API (the service's URL), CF_USER, CF_PASSWORD, CF_APP_ZIP (a static site),
CF_STATE (a file), CF_TOKEN_TTL (seconds, for `expiry`). Everything goes through the client's
public managers and the links the API returns; where the client has no method for a CF
endpoint (apps and builds have no `create`, the current droplet no setter, apply_manifest
none), its EntityManager does the request, as the client's own managers do. Raw HTTP is used
only to look at an error's shape. Any failed check exits 1 with what was expected and seen.
"""

import base64
import json
import os
import sys
import time

import requests
from cloudfoundry_client.client import CloudFoundryClient
from cloudfoundry_client.errors import InvalidStatusCode
from cloudfoundry_client.v3.entities import EntityManager, ToOneRelationship
from cloudfoundry_client.v3.packages import PackageType

API = os.environ["CF_API"].rstrip("/")
PAGE_APPS = 6


def step(msg):
    print(f"cf-client: {msg}", file=sys.stderr, flush=True)


def check(cond, what, seen=None):
    if not cond:
        detail = "" if seen is None else f": {json.dumps(seen, default=str)[:2000]}"
        print(f"cf-client: FAILED: {what}{detail}", file=sys.stderr, flush=True)
        sys.exit(1)


def login():
    client = CloudFoundryClient(API)
    client.init_with_user_credentials(os.environ["CF_USER"], os.environ["CF_PASSWORD"])
    return client


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def raw_error(token, path):
    """An API answer to `token`, read without the client (which would refresh and retry)."""
    r = requests.get(f"{API}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, r.text


def invalid_token(answer):
    status, body = answer
    errors = body.get("errors", [{}]) if isinstance(body, dict) else [{}]
    return status == 401 and errors[0].get("code") == 1000 and errors[0].get("title") == "CF-InvalidAuthToken"


def wait_for(what, get, done, within):
    deadline = time.time() + within
    while True:
        value = get()
        if done(value):
            return value
        check(time.time() < deadline, f"{what} within {within}s", value)
        time.sleep(0.5)


def discover_and_login():
    step(f"discovery from GET {API}/")
    client = login()
    check(client.info.api_v3_url == f"{API}/v3", "the v3 API found from the root links", client.info.api_v3_url)
    check(client.info.authorization_endpoint == API, "the login endpoint is the service", client.info.authorization_endpoint)
    token = claims(client._access_token)
    for claim in ("user_name", "user_id", "origin", "exp", "iat", "jti", "scope"):
        check(claim in token, f"the access token has the claim {claim}", token)
    check(token["user_name"] == os.environ["CF_USER"], "user_name is the user who logged in", token)
    check(token["exp"] > time.time(), "the access token is not expired", token)
    check(client.refresh_token, "a refresh token came with the access token")
    return client


def default_space(client):
    space = client.v3.spaces.get_first(names="dropship")
    check(space is not None, "the default space 'dropship' is listed")
    org = space.organization()
    check(org["guid"] == space["relationships"]["organization"]["data"]["guid"], "the space's organization link", org)
    return space


def create_app(client, name, space):
    data = {"name": name, "relationships": {"space": ToOneRelationship(space["guid"])}}
    app = client.v3.apps._create(data)
    check(app["name"] == name and app["state"] == "STOPPED", f"app {name} created STOPPED", app)
    check(app["relationships"]["space"]["data"]["guid"] == space["guid"], "the app is in the space", app)
    return app


def upload(client, app):
    pkg = client.v3.packages.create(app["guid"], PackageType.BITS)
    check(pkg["type"] == "bits" and pkg["state"] == "AWAITING_UPLOAD", "a bits package awaiting upload", pkg)
    with open(os.environ["CF_APP_ZIP"], "rb") as bits:
        uploaded = pkg.upload(files={"bits": ("app.zip", bits, "application/zip")})
    check(uploaded["guid"] == pkg["guid"], "the upload answers with the package", uploaded)
    ready = wait_for("package READY", lambda: client.v3.packages.get(pkg["guid"]),
                     lambda p: p["state"] in ("READY", "FAILED"), 120)
    check(ready["state"] == "READY", "the package is READY", ready)
    return ready


def stage(client, pkg):
    builds = EntityManager(client.v3.apps.target_endpoint, client, "/v3/builds")
    build = builds._create({"package": {"guid": pkg["guid"]}})
    check(build["state"] == "STAGING", "the build starts STAGING", build)
    done = wait_for("build STAGED", lambda: builds.get(build["guid"]),
                    lambda b: b["state"] in ("STAGED", "FAILED"), 300)
    check(done["state"] == "STAGED", "the build is STAGED", done)
    droplet = client.v3.droplets.get(done["droplet"]["guid"])
    check(droplet["state"] == "STAGED" and "web" in droplet["process_types"], "a staged droplet with a web process", droplet)
    return droplet


def set_current_and_start(client, app, droplet):
    url = f"{API}/v3/apps/{app['guid']}/relationships/current_droplet"
    rel = client.v3.apps._patch(url, {"data": {"guid": droplet["guid"]}})
    check(rel["data"]["guid"] == droplet["guid"], "the current droplet is set", rel)
    app = client.v3.apps.get(app["guid"])
    current = app.current_droplet()
    check(current["guid"] == droplet["guid"], "the app's current_droplet link names it", current)
    started = app.start()
    check(started["state"] == "STARTED", "the app is STARTED", started)
    return started


def paged_lists(client, space, first):
    names = [first] + [f"page-app-{i:02}" for i in range(PAGE_APPS)]
    for name in names[1:]:
        create_app(client, name, space)
    step(f"listing {len(names)} apps, 3 per page")
    listed = [a["name"] for a in client.v3.apps.list(per_page=3, order_by="name", space_guids=space["guid"])]
    check(sorted(listed) == sorted(names) and listed == sorted(listed), "every app, in name order, across pages", listed)
    check(client.v3.apps.len(per_page=3) == len(names), "total_results counts every app")
    few = [a["name"] for a in client.v3.apps.list(names=f"{first},page-app-03")]
    check(sorted(few) == sorted([first, "page-app-03"]), "the names filter", few)


def processes(client, app):
    procs = {p["type"]: p for p in client.v3.processes.list(app_guids=app["guid"])}
    check("web" in procs, "the app has a web process", list(procs))
    web = procs["web"]
    stats = client.v3.processes.get(web["guid"], "stats")
    check(len(stats["resources"]) == web["instances"], "one stats entry per instance", stats)
    check(stats["resources"][0]["type"] == "web", "stats of the web process", stats)
    step("scaling web to 3 instances of 256 MB")
    scaled = web.scale(data={"instances": 3, "memory_in_mb": 256})
    check(scaled["instances"] == 3 and scaled["memory_in_mb"] == 256, "scale answers with the new process", scaled)
    again = client.v3.processes.get(web["guid"])
    check(again["instances"] == 3, "the scale is kept", again)
    stats = client.v3.processes.get(web["guid"], "stats")
    check(len(stats["resources"]) == 3, "three instances in the stats", stats)


def apply_manifest(client, space, app):
    manifest = {"applications": [{
        "name": app["name"],
        "processes": [
            {"type": "web", "instances": 2, "memory": "128M"},
            {"type": "worker", "instances": 2, "command": "sleep 3600", "memory": "64M"},
        ],
    }]}
    step("apply_manifest with a worker process")
    url = f"{API}/v3/spaces/{space['guid']}/actions/apply_manifest"
    answer = client.v3.spaces._post(url, data=manifest)
    job_url = answer["links"]["job"]["href"]
    job = client.v3.jobs.wait_for_job_completion(job_url.rsplit("/", 1)[-1], timeout=120)
    check(job["state"] == "COMPLETE", "the apply_manifest job completes", job)
    procs = {p["type"]: p for p in client.v3.processes.list(app_guids=app["guid"])}
    check(set(procs) >= {"web", "worker"}, "web and worker processes", list(procs))
    check(procs["web"]["instances"] == 2 and procs["web"]["memory_in_mb"] == 128, "the manifest's web scale", procs["web"])
    worker = procs["worker"]
    check(worker["instances"] == 2 and worker["command"] == "sleep 3600", "the manifest's worker", worker)
    text = client.v3.apps.get_manifest(app["guid"])
    check("worker" in text and "sleep 3600" in text, "the app's manifest has the worker", text)


def refresh_after_tampering(client, app):
    good = client._access_token
    head, payload, sig = good.split(".")
    body = claims(good)
    body["user_name"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    tampered = f"{head}.{forged}.{sig}"
    check(invalid_token(raw_error(tampered, "/v3/apps")), "a tampered token gets 401 CF-InvalidAuthToken (1000)",
          raw_error(tampered, "/v3/apps"))
    client._access_token = tampered
    again = client.v3.apps.get(app["guid"])
    check(again["guid"] == app["guid"], "the client refreshed and read the app", again)
    check(client._access_token not in (tampered, ""), "the client holds a new access token")


def phase_stage():
    client = discover_and_login()
    space = default_space(client)
    name = "cf-client-site"
    app = create_app(client, name, space)
    step("package, upload, build")
    pkg = upload(client, app)
    droplet = stage(client, pkg)
    app = set_current_and_start(client, app, droplet)
    paged_lists(client, space, name)
    processes(client, app)
    apply_manifest(client, space, app)
    refresh_after_tampering(client, app)
    state = {"app": app["guid"], "name": name, "image": droplet["image"], "space": space["guid"]}
    with open(os.environ["CF_STATE"], "w") as f:
        json.dump(state, f)
    step("stage phase done")


def phase_delete():
    with open(os.environ["CF_STATE"]) as f:
        state = json.load(f)
    client = login()
    step(f"deleting app {state['name']}")
    client.v3.apps.remove(state["app"], asynchronous=False)
    try:
        gone = client.v3.apps.get(state["app"])
        check(False, "the deleted app is gone", gone)
    except InvalidStatusCode as e:
        check(e.status_code == 404, "the deleted app answers 404", str(e))
    left = [a["name"] for a in client.v3.apps.list(per_page=2)]
    check(state["name"] not in left and len(left) == PAGE_APPS, "the other apps stay", left)
    step("delete phase done")


def phase_expiry():
    client = login()
    first = client._access_token
    ttl = int(os.environ["CF_TOKEN_TTL"])
    step(f"waiting {ttl + 2}s for the access token to expire")
    time.sleep(ttl + 2)
    check(invalid_token(raw_error(first, "/v3/apps")), "an expired token gets 401 CF-InvalidAuthToken (1000)",
          raw_error(first, "/v3/apps"))
    apps = list(client.v3.apps.list())
    check(isinstance(apps, list), "the client refreshed and listed apps")
    check(client._access_token != first, "the client holds a new access token")
    check(claims(client._access_token)["exp"] > time.time(), "the new token is valid")
    step("expiry phase done")


if __name__ == "__main__":
    phases = {"stage": phase_stage, "delete": phase_delete, "expiry": phase_expiry}
    phases[sys.argv[1]]()
