// Cross-account restore. The restore task role can only push into its own account; a repository
// policy in another account cannot grant ecr:CreateRepository or ecr:GetAuthorizationToken. So a
// restore into another account assumes a role there (execution input `target.roleArn`), and the
// stack lists the roles it may assume (EcrBackup `restoreTargetRoles`): the task role gets
// sts:AssumeRole on exactly those ARNs, nothing else.
//
// The target account's role (see README "Cross-account restore") trusts the stack's restore task
// role (stack output RestoreTaskRoleArn) and allows the ECR push actions on the repositories it may
// receive, plus ecr:GetAuthorizationToken on "*".
import * as iam from 'aws-cdk-lib/aws-iam';

/** `arn:<partition>:iam::<account>:role/<path/name>`: what `restoreTargetRoles` entries must be. */
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

export function grantCrossAccountRestore(role: iam.IRole, targetRoles: readonly string[]): void {
  for (const arn of targetRoles) {
    if (!ROLE_ARN.test(arn))
      throw new Error(`restoreTargetRoles: ${JSON.stringify(arn)} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)`);
  }
  if (targetRoles.length === 0) return;
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'AssumeRestoreTargetRoles', actions: ['sts:AssumeRole'], resources: [...targetRoles] }),
  );
}
