//! The "Examples:" block at the end of each command's `--help`.

pub const TOP: &str = "\
Examples:
  dropship build ./app --stack oci:stacks:busybox --image oci:out:app
  dropship serve --data-dir /var/lib/dropship --stack docker://registry.local/stacks/cflinuxfs4
  dropship push ./app --api http://127.0.0.1:8080 -b nodejs
  dropship completion bash > /etc/bash_completion.d/dropship";

pub const BUILD: &str = "\
Examples:
  dropship build ./site --stack oci:stacks:busybox --image oci:out:site
  dropship build app.zip --stack docker://registry.local/stacks/cflinuxfs4 \\
      --image docker://registry.local/apps/app:1 --buildpack nodejs --memory 512M --manifests k8s/
  dropship build ./app --stack oci:stacks:busybox --image oci:out:app --json";

pub const REBASE: &str = "\
Examples:
  dropship rebase docker://registry.local/apps/shop:1 --stack docker://registry.local/stacks/cflinuxfs4:patched
  dropship rebase oci:out:app --stack oci:stacks:busybox-2 --image oci:out:app-2 --json
  dropship rebase docker://registry.local/apps/shop:1 --stack docker://registry.local/stacks/jammy --force";

pub const SERVE: &str = "\
Examples:
  dropship serve --stack docker://registry.local/stacks/cflinuxfs4 --token s3cret
  dropship serve --config /etc/dropship/dropship.toml --log-format json
  dropship serve --user admin:s3cret --user dev:pa55word
  DROPSHIP_LISTEN=0.0.0.0:8080 DROPSHIP_DATA_DIR=/var/lib/dropship dropship serve";

pub const PUSH: &str = "\
Examples:
  dropship push ./app --api http://127.0.0.1:8080
  dropship push app.zip --api https://dropship.example.com --name shop -b nodejs -s cflinuxfs4
  DROPSHIP_API=http://127.0.0.1:8080 DROPSHIP_TOKEN=s3cret dropship push ./app --json
  dropship login -a http://127.0.0.1:8080 -u admin && dropship push ./app";

pub const LOGIN: &str = "\
Examples:
  dropship login -a http://127.0.0.1:8080 -u admin
  DROPSHIP_PASSWORD=s3cret dropship login -a https://dropship.example.com -u ci-bot";

pub const LOGOUT: &str = "\
Examples:
  dropship logout";

pub const TARGET: &str = "\
Examples:
  dropship target
  dropship target -o my-org -s dev
  dropship target -a https://dropship.example.com";

pub const VERSION: &str = "\
Examples:
  dropship version
  dropship version --json";

pub const COMPLETION: &str = "\
Examples:
  dropship completion bash > /etc/bash_completion.d/dropship
  dropship completion zsh > \"${fpath[1]}/_dropship\"
  dropship completion fish > ~/.config/fish/completions/dropship.fish";

pub const STACK: &str = "\
Examples:
  dropship stack import rootfs.tar.gz --image oci:stacks:busybox --name busybox
  dropship stack list
  dropship stack inspect docker://registry.local/stacks/cflinuxfs4:latest";

pub const STACK_IMPORT: &str = "\
Examples:
  dropship stack import ./rootfs --image oci:stacks:busybox --name busybox
  dropship stack import cflinuxfs4.tar.gz --image docker://registry.local/stacks/cflinuxfs4";

pub const STACK_LIST: &str = "\
Examples:
  dropship stack list
  dropship stack list --stack-cache /var/cache/dropship --json";

pub const STACK_INSPECT: &str = "\
Examples:
  dropship stack inspect oci:stacks:busybox
  dropship stack inspect docker://registry.local/stacks/cflinuxfs4:latest --json";

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `(path, what is missing)` for every command without examples or option without help.
    fn missing(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        let path = format!("{path} {}", cmd.get_name()).trim().to_string();
        let examples = cmd
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        if !examples.starts_with("Examples:") {
            out.push(format!("{path}: no Examples"));
        }
        for arg in cmd.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} {}: no help", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            missing(sub, &path, out);
        }
    }

    #[test]
    fn every_command_has_examples_and_every_option_help() {
        let mut out = Vec::new();
        missing(&super::super::Cli::command(), "", &mut out);
        assert!(out.is_empty(), "{}", out.join("\n"));
    }
}
