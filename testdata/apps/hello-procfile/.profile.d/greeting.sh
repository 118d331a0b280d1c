# Sourced by the launcher before the start command, as on Cloud Foundry.
export GREETING="${GREETING:-set by .profile.d}"
