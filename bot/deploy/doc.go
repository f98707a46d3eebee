// Package deploy holds the CloudFormation templates that run dbusers in AWS:
// control-plane.yaml (the reconcile Lambda, its rules, topic, alarms and
// dashboard), target-account.yaml (the management role in every account
// that owns clusters, for StackSets) and github-oidc.yaml (the role the
// publish workflow assumes). It has no Go API: its tests parse the
// templates and hold them to the names the code uses and to least
// privilege, and hold the GitHub Actions workflows (.github/workflows),
// which hold the publish role, to pinned actions and pipefail.
// docs/deploy.md says how to deploy the templates.
package deploy
